"""Attention kernels: time and memory of the fused kernels against XLA and cuDNN.

On GPU (jax.default_backend() == "gpu") it times, at each sequence length, the forward and the
forward+backward (jax.vjp with a random cotangent, all three gradients) of
  pallas: `flash_attention(impl="pallas")`  (the Pallas GPU kernel, gpu.py),
  xla:    `flash_attention(impl="xla")`     (the jnp reference, [B, H, S, T] logits),
  cudnn:  `flash_attention(impl="cudnn")`   (jax.nn.dot_product_attention, cuDNN),
reporting the median wall time over --reps calls after one warm-up (compile) call, and the
compiled memory (`memory_analysis()`: temp, argument and output bytes). An implementation
that fails to compile or run is recorded with its error instead of numbers.

On TPU the same runs with pallas = the Mosaic TPU kernel and no cuDNN.

On CPU nothing is timed: interpret mode runs the kernel body op by op through the
interpreter, so its speed says nothing about the compiled kernel. It records the compiled
temp memory of the XLA reference (forward and forward+backward), which is what the fused
kernels avoid, next to the size of one float32 [B, H, S, T] logits array.

Usage:
  .venv/bin/python benchmarks/kernels_attention.py \
      --out benchmarks/results/kernels_attention_cpu.jsonl
  (on a GPU)  .venv/bin/python benchmarks/kernels_attention.py --batch 4 --heads 16 \
      --head_dim 128 --out benchmarks/results/kernels_attention_gpu.jsonl

Writes JSON lines (one per measurement, plus a meta record) to --out and prints them.
"""
import argparse
import datetime
import json
import platform
import sys

import jax
import jax.numpy as jnp

from bench_common import median_seconds
from pallas_kernels.flash_attention import flash_attention

DTYPES = {"bf16": jnp.bfloat16, "f16": jnp.float16, "f32": jnp.float32}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seq_lens", type=int, nargs="+", default=[256, 1024, 4096])
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--head_dim", type=int, default=64)
  parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
  parser.add_argument("--causal", action="store_true")
  parser.add_argument("--reps", type=int, default=20)
  parser.add_argument("--impls", nargs="+", default=None,
                      help="implementations to time (default: all the platform has)")
  parser.add_argument("--out", default=None, help="JSON lines file to write")
  return parser.parse_args(argv)


def make_inputs(args, seq_len):
  keys = jax.random.split(jax.random.key(0), 4)
  shape = (args.batch, seq_len, args.heads, args.head_dim)
  return [jax.random.normal(key, shape, DTYPES[args.dtype]) for key in keys]


def forward_fn(impl, causal):
  return jax.jit(lambda q, k, v: flash_attention(q, k, v, causal=causal, impl=impl))


def forward_backward_fn(impl, causal):
  def run(q, k, v, cotangent):
    out, vjp = jax.vjp(lambda q, k, v: flash_attention(q, k, v, causal=causal, impl=impl),
                       q, k, v)
    return out, vjp(cotangent)
  return jax.jit(run)


def compiled_memory(fn, *args):
  """Bytes the compiled function needs, from XLA's memory analysis."""
  stats = fn.lower(*args).compile().memory_analysis()
  return {"temp_bytes": int(stats.temp_size_in_bytes),
          "argument_bytes": int(stats.argument_size_in_bytes),
          "output_bytes": int(stats.output_size_in_bytes)}


def measure(impl, pass_name, args, seq_len, *, timed):
  q, k, v, cotangent = make_inputs(args, seq_len)
  if pass_name == "forward":
    fn, fn_args = forward_fn(impl, args.causal), (q, k, v)
  else:
    fn, fn_args = forward_backward_fn(impl, args.causal), (q, k, v, cotangent)
  record = {"kind": "measurement", "impl": impl, "pass": pass_name, "seq_len": seq_len,
            "batch": args.batch, "heads": args.heads, "head_dim": args.head_dim,
            "dtype": args.dtype, "causal": args.causal,
            "logits_f32_bytes": 4 * args.batch * args.heads * seq_len * seq_len}
  try:
    record.update(compiled_memory(fn, *fn_args))
    if timed:
      record["median_s"] = median_seconds(fn, fn_args, args.reps)[0]
  except Exception as error:  # one failing implementation must not hide the others
    record["error"] = f"{type(error).__name__}: {error}"[:500]
  return record


def default_impls(backend):
  return {"gpu": ["pallas", "xla", "cudnn"], "tpu": ["pallas", "xla"]}.get(backend, ["xla"])


def main(argv=None):
  args = parse_args(argv)
  backend = jax.default_backend()
  impls = args.impls or default_impls(backend)
  timed = backend in ("gpu", "tpu")
  records = [{
      "kind": "meta", "backend": backend, "devices": [str(d) for d in jax.devices()][:1],
      "jax": jax.__version__, "python": platform.python_version(),
      "machine": platform.machine(), "date": datetime.datetime.now().isoformat(),
      "command": " ".join(sys.argv),
      "note": None if timed else ("CPU: compiled memory of the XLA reference only; the "
                                  "interpret-mode kernel is not a performance proxy"),
  }]
  print(json.dumps(records[0]))
  for seq_len in args.seq_lens:
    for impl in impls:
      for pass_name in ("forward", "forward_backward"):
        records.append(measure(impl, pass_name, args, seq_len, timed=timed))
        print(json.dumps(records[-1]), flush=True)
  if args.out:
    with open(args.out, "w") as f:
      f.writelines(json.dumps(record) + "\n" for record in records)


if __name__ == "__main__":
  main()
