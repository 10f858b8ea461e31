"""Gaussian splatting forward+backward: the zoo's `gaussian_splat` against a torch transcription
of GPSToken's CUDA renderer (tests/golden/torch_gs_reference.py), the same inputs, one process.

One timed call renders N Gaussians with C = 16 features onto an S x S grid (batch 1, dmax 3,
GPSToken-like sizes: sigma in [0.02, 0.2], |rho| < 0.6, centres in [-1, 1]) and back-propagates
a fixed random cotangent to the geometry and features:
  zoo:    jax.jit(jax.vjp) of gaussian_splat (impl from --impl; on CPU "xla": the dense
          reference, autodiff gradients; "pallas" on a GPU / TPU)
  torch:  autograd through torch_gs_reference.splat, torch.set_num_threads(--threads)
Before timing, the script checks both renders and gradients agree (relative max error).
Medians over --reps calls after one warm-up each, the two alternating. N runs over 64..4096,
S over 64 and 256; configurations whose dense [N, S, S] weights exceed --max_gb are skipped.

  .venv/bin/python benchmarks/gaussian_splat.py --out benchmarks/results/gaussian_splat_cpu.jsonl
"""
import argparse
import datetime
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "golden"))
sys.path.insert(0, str(HERE))
from bench_common import JsonLinesLog  # noqa: E402

CHANNELS = 16
DMAX = 3.0


def make_inputs(n: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  geometry = np.concatenate([rng.uniform(0.02, 0.2, (1, n, 2)), rng.uniform(-0.6, 0.6, (1, n, 1)),
                             rng.uniform(-1.0, 1.0, (1, n, 2))], -1).astype(np.float32)
  features = rng.standard_normal((1, n, CHANNELS)).astype(np.float32)
  return geometry, features


def zoo_fn(size: int, impl):
  import jax
  from pallas_kernels.gaussian_splat import gaussian_splat

  @jax.jit
  def run(geometry, features, cotangent):
    out, vjp = jax.vjp(lambda g, f: gaussian_splat(g, f, size, size, dmax=DMAX, impl=impl),
                       geometry, features)
    return (out,) + vjp(cotangent)
  return lambda *a: jax.block_until_ready(run(*a))


def torch_fn(size: int):
  import torch
  from torch_gs_reference import splat

  def run(geometry, features, cotangent):
    g = torch.from_numpy(geometry[0]).requires_grad_(True)
    f = torch.from_numpy(features[0]).requires_grad_(True)
    out = splat(g[:, :3], g[:, 3:5], f, (size, size), DMAX)
    out.backward(torch.from_numpy(cotangent[0]))
    return out.detach().numpy()[None], g.grad.numpy()[None], f.grad.numpy()[None]
  return run


def rel_err(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--counts", default="64,256,1024,4096")
  p.add_argument("--sizes", default="64,256")
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--threads", type=int, default=os.cpu_count())
  p.add_argument("--impl", default=None, help="gaussian_splat impl (default: by platform)")
  p.add_argument("--max_gb", type=float, default=2.0)
  p.add_argument("--out", default=str(HERE / "results" / "gaussian_splat_cpu.jsonl"))
  args = p.parse_args()
  import jax
  import torch
  torch.set_num_threads(args.threads)
  log = JsonLinesLog(args.out)
  log({"meta": True, "date": datetime.date.today().isoformat(), "jax": jax.__version__,
       "torch": torch.__version__, "device": str(jax.devices()[0]),
       "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
       "threads": args.threads, "impl": args.impl or "default", "command": " ".join(sys.argv)})
  print(f"{'N':>6} {'grid':>7} {'zoo ms':>9} {'torch ms':>9} {'torch/zoo':>9} {'max rel err':>11}")
  for size in (int(s) for s in args.sizes.split(",")):
    for n in (int(c) for c in args.counts.split(",")):
      if n * size * size * 4 / 2 ** 30 > args.max_gb:
        print(f"{n:>6} {size:>4}^2  skipped (dense weights over {args.max_gb} GB)")
        continue
      geometry, features = make_inputs(n)
      cotangent = np.random.default_rng(1).standard_normal(
          (1, size, size, CHANNELS)).astype(np.float32)
      fns = {"zoo": zoo_fn(size, args.impl), "torch": torch_fn(size)}
      results = {k: fn(geometry, features, cotangent) for k, fn in fns.items()}  # warm-up
      err = max(rel_err(a, b) for a, b in zip(results["zoo"], results["torch"]))
      times = {k: [] for k in fns}
      for rep in range(args.reps):
        for k in (list(fns) if rep % 2 == 0 else list(fns)[::-1]):
          start = time.perf_counter()
          fns[k](geometry, features, cotangent)
          times[k].append(time.perf_counter() - start)
      med = {k: statistics.median(v) for k, v in times.items()}
      print(f"{n:>6} {size:>4}^2 {med['zoo'] * 1e3:>9.2f} {med['torch'] * 1e3:>9.2f} "
            f"{med['torch'] / med['zoo']:>9.2f} {err:>11.1e}")
      log({"num_gaussians": n, "grid": size, "channels": CHANNELS, "zoo_s": med["zoo"],
           "torch_s": med["torch"], "torch_over_zoo": med["torch"] / med["zoo"],
           "max_rel_err": err, "zoo_times": times["zoo"], "torch_times": times["torch"]})
  log.close()


if __name__ == "__main__":
  main()
