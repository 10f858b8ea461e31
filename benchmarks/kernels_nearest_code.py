"""Memory (and, on a GPU, time) of the fused nearest-code search against XLA's reference.

The XLA reference materialises all [N, K] scores; the kernels keep one [tokens, codes] tile.

On CPU (no kernel can be compiled there) the script reports what XLA would allocate, from
`jax.jit(f).lower(...).compile().memory_analysis()`, without running anything big:
  xla_reference       the reference (`nearest_code_reference`): an [N, K] float32 buffer.
  xla_scan            the same search in pure XLA, tiled like the kernels (a `lax.map` over 4096
                      token tiles, a `lax.scan` over 1024 code tiles with a running
                      min/argmin): what a fused search needs on a CPU.
  pallas_hlo_interp   the TPU kernel under `interpret=True` (a jit of a scan over the grid): its
                      temporaries are the padded inputs (D -> 128 lanes) and one tile's work.
  pallas_tpu_interp   the TPU kernel under `pltpu.InterpretParams()`: NOT representative, the
                      simulated VMEM/HBM live in host callbacks that XLA does not count.
`--time_n` additionally times xla_reference and xla_scan on CPU at a smaller N.

On a GPU (`jax.default_backend() == "gpu"`) it times the Mosaic GPU kernel (bfloat16 inputs,
the only ones it serves) against xla_scan and the XLA reference on the same inputs, and reports
the compiled temporaries and the device's peak memory so far after each (run in ascending order
of expected peak, since the device peak cannot be reset), and how often the ids agree.

Usage:
  .venv/bin/python benchmarks/kernels_nearest_code.py \
      --out benchmarks/results/kernels_nearest_code_cpu.jsonl
Writes JSON lines: one record per measurement, plus a meta record.
"""
import argparse
import datetime
import json
import platform
import sys

import jax
import jax.numpy as jnp
from jax.experimental.pallas import tpu as pltpu

from bench_common import median_seconds
from pallas_kernels.nearest_code import gpu, reference, tiled_xla, tpu

MEMORY_FIELDS = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                 "generated_code_size_in_bytes")


def compiled_memory(fn, *args):
  analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
  return {field: int(getattr(analysis, field)) for field in MEMORY_FIELDS}


def cpu_records(args):
  shape = dict(n=args.n, k=args.k, d=args.d, dtype=args.dtype)
  x = jax.ShapeDtypeStruct((args.n, args.d), args.dtype)
  codebook = jax.ShapeDtypeStruct((args.k, args.d), args.dtype)
  impls = {
      "xla_reference": reference.nearest_code_reference,
      "xla_scan": tiled_xla.tiled_nearest_code,
      "pallas_hlo_interp": lambda a, b: tpu.nearest_code(a, b, interpret=True),
      "pallas_tpu_interp": lambda a, b: tpu.nearest_code(a, b, interpret=pltpu.InterpretParams()),
  }
  for name, fn in impls.items():
    yield {"kind": "cpu_compiled_memory", "impl": name, **shape, **compiled_memory(fn, x, codebook)}
  if args.time_n:
    key_x, key_c = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (args.time_n, args.d), args.dtype)
    codebook = jax.random.normal(key_c, (args.k, args.d), args.dtype)
    for name in ("xla_reference", "xla_scan"):
      median, times = median_seconds(jax.jit(impls[name]), (x, codebook), args.reps)
      yield {"kind": "cpu_time", "impl": name, "n": args.time_n, "k": args.k, "d": args.d,
             "dtype": args.dtype, "median_s": median, "times_s": times}


def gpu_records(args):
  dtype = "bfloat16"  # the GPU kernel serves bf16 l2 searches only
  key_x, key_c = jax.random.split(jax.random.key(0))
  x = jax.random.normal(key_x, (args.n, args.d), dtype)
  codebook = jax.random.normal(key_c, (args.k, args.d), dtype)
  device = jax.local_devices()[0]
  impls = {"mosaic_gpu_kernel": gpu.nearest_code, "xla_scan": tiled_xla.tiled_nearest_code,
           "xla_reference": reference.nearest_code_reference}  # ascending peak memory
  results = {}
  for name, fn in impls.items():
    median, times = median_seconds(jax.jit(fn), (x, codebook), args.reps)
    results[name] = jax.jit(fn)(x, codebook)
    stats = device.memory_stats() or {}
    yield {"kind": "gpu", "impl": name, "n": args.n, "k": args.k, "d": args.d, "dtype": dtype,
           "median_s": median, "times_s": times, **compiled_memory(fn, x, codebook),
           "peak_bytes_in_use_so_far": stats.get("peak_bytes_in_use")}
  kernel_ids, reference_ids = results["mosaic_gpu_kernel"][0], results["xla_reference"][0]
  yield {"kind": "gpu_agreement",
         "ids_equal_fraction": float(jnp.mean(kernel_ids == reference_ids))}


def meta_record():
  return {"kind": "meta", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
          "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()], "machine": platform.machine(),
          "processor": platform.processor(), "command": " ".join(sys.argv)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=65536, help="tokens")
  parser.add_argument("--k", type=int, default=16384, help="codes")
  parser.add_argument("--d", type=int, default=16, help="code dimension")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                      help="input dtype for the CPU part (the GPU part always uses bfloat16)")
  parser.add_argument("--time_n", type=int, default=8192,
                      help="CPU only: also time the XLA searches at this N (0 skips)")
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--out", required=True, help="JSON lines output path")
  args = parser.parse_args()
  records = [meta_record()]
  records += gpu_records(args) if jax.default_backend() == "gpu" else cpu_records(args)
  with open(args.out, "w") as out:
    for record in records:
      print(json.dumps(record))
      out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
  main()
