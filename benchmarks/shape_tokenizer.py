"""3D shape tokenizers on CPU: 3DShape2VecSet's autoencoder, the zoo against the official code
with the same weights in one process, and the zoo's VAT encode+decode and marching-cubes time.

3DShape2VecSet: the released kl_d512_m512_l8 architecture (512 latents of 8 channels, width 512,
24 latent blocks) filled with one seeded state dict in the official layout
(`zoo.convert.seeded.seeded_state_dict`; the Fourier basis is the official model's own), on real
shapes (builtin:shapes, test split): 2048 surface points and 4096 occupancy queries each. One
timed repetition is encode + decode of a batch:
  zoo:       z = model.encode(points); logits = model.decode(z, queries)   (jax.block_until_ready)
  official:  _, z = model.encode(points); model.decode(z, queries)  in torch.inference_mode()
             (it samples the posterior; the comparison of outputs uses the mean, read by hooks)
The official's farthest-point sampling (torch_cluster, a C++/CUDA extension not installable
here) is tests/golden/shape2vecset_official.py's torch transcription, so its encode timing is
that of the transcription; the decode, the bulk of the work at 4096 queries, is the official's.
Both warm up once; then they alternate, the order flipping every repetition.

VAT (zoo only, no official code exists): encode + decode to the triplane, and a mesh (occupancy
on a (R + 1)^3 grid + marching cubes) per shape, for vat_b256 with random weights.

  .venv/bin/python benchmarks/shape_tokenizer.py --official_repo /tmp/shape2vecset_official
Prints a table and writes JSON lines (a meta record, then one record per measurement) to --out.
"""
import argparse
import datetime
import importlib.metadata
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

from bench_common import JsonLinesLog, alternating_seconds

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "golden"))


def real_shapes(batch: int):
  from zoo.data.shape_sets import ShapeSet
  shapes = ShapeSet("builtin:shapes", "test", limit=batch, progress=False)
  points = np.stack([s.surface[:2048] for s in shapes])
  normals = np.stack([s.normals[:2048] for s in shapes])
  queries = np.stack([np.concatenate([s.uniform[:2048], s.near[:2048]]) for s in shapes])
  return points, normals, queries


def build_shape2vecset(repo):
  import torch
  import zoo
  from flax import nnx
  from shape2vecset_official import import_official
  from zoo.convert import shape2vecset as convert
  from zoo.convert.seeded import seeded_state_dict
  official = import_official(repo).kl_d512_m512_l8().eval()
  shapes = {k: v.shape for k, v in official.state_dict().items() if k != convert.BASIS}
  state = seeded_state_dict(shapes, 0)
  official.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
  ours = nnx.eval_shape(lambda: zoo.create("shape2vecset_kl_d512_m512_l8"))
  convert.load_state_dict(ours, state | {convert.BASIS: official.point_embed.basis.numpy()})
  return official, ours


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--out", default=str(ROOT / "benchmarks/results/shape_tokenizer.jsonl"))
  args = parser.parse_args()
  import jax
  import torch
  from flax import nnx
  import zoo
  from zoo.evals.shape_reconstruction import extract_mesh, occupancy_grid
  torch.set_num_threads(args.threads)
  log = JsonLinesLog(args.out)
  log({"meta": True, "date": datetime.date.today().isoformat(), "cpu": platform.processor()
       or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
       "python": platform.python_version(), "jax": jax.__version__,
       "flax": importlib.metadata.version("flax"), "torch": torch.__version__,
       "command": " ".join(sys.argv)})
  official, ours = build_shape2vecset(args.official_repo)
  zoo_fn = nnx.jit(lambda m, p, q: m.decode(m.encode(p), q))
  seen = {}
  official.mean_fc.register_forward_hook(lambda m, i, o: seen.__setitem__("mean", o))

  def official_fn(p, q):
    with torch.inference_mode():
      _, z = official.encode(p)
      return official.decode(z, q)

  for batch in args.batch_sizes:
    points, _, queries = real_shapes(batch)
    pt, qt = torch.from_numpy(points), torch.from_numpy(queries)
    t0 = time.perf_counter()
    logits = jax.block_until_ready(zoo_fn(ours, points, queries))
    compile_s = time.perf_counter() - t0
    official_fn(pt, qt)
    with torch.inference_mode():
      want = official.decode(seen["mean"], qt).squeeze(-1).numpy()
    diff = float(np.abs(np.asarray(logits) - want).max())
    times = alternating_seconds(
        {"zoo": lambda: jax.block_until_ready(zoo_fn(ours, points, queries)),
         "official": lambda: official_fn(pt, qt)}, args.reps)
    row = {"model": "shape2vecset_kl_d512_m512_l8", "batch": batch, "queries": queries.shape[1],
           "max_logit_diff": diff, "zoo_first_call_s": compile_s,
           **{f"{k}_shapes_per_s": batch / statistics.median(v) for k, v in times.items()},
           **{f"{k}_seconds": v for k, v in times.items()}}
    row["speedup"] = row["zoo_shapes_per_s"] / row["official_shapes_per_s"]
    log(row)
    print(f"shape2vecset batch {batch}: zoo {row['zoo_shapes_per_s']:.3f}/s, official "
          f"{row['official_shapes_per_s']:.3f}/s ({row['speedup']:.2f}x); max |logit diff| "
          f"{diff:.2e}", flush=True)

  vat = zoo.create("vat_b256")
  vat_fn = nnx.jit(lambda m, p, n: m.decode(m.encode(p, n)))
  points, normals, _ = real_shapes(max(args.batch_sizes))
  for batch in args.batch_sizes:
    p, n = points[:batch], normals[:batch]
    jax.block_until_ready(vat_fn(vat, p, n))
    seconds = []
    for _ in range(args.reps):
      start = time.perf_counter()
      jax.block_until_ready(vat_fn(vat, p, n))
      seconds.append(time.perf_counter() - start)
    row = {"model": "vat_b256", "batch": batch, "zoo_shapes_per_s": batch / statistics.median(
        seconds), "zoo_seconds": seconds, "bytes_per_shape": vat.bytes_per_shape}
    log(row)
    print(f"vat_b256 encode+decode batch {batch}: {row['zoo_shapes_per_s']:.3f} shapes/s")
  triplane = vat_fn(vat, points[:1], normals[:1])
  for resolution in args.resolutions:
    occupancy_grid(vat, triplane, resolution)  # compile
    start = time.perf_counter()
    grid = occupancy_grid(vat, triplane, resolution)
    grid_s = time.perf_counter() - start
    start = time.perf_counter()
    extract_mesh(grid - np.median(grid))  # random weights: a level that crosses the field
    mc_s = time.perf_counter() - start
    log({"model": "vat_b256", "resolution": resolution, "grid_query_s": grid_s,
         "marching_cubes_s": mc_s})
    print(f"vat_b256 mesh at {resolution}: grid queries {grid_s:.2f} s, marching cubes "
          f"{mc_s:.2f} s")
  log.close()


if __name__ == "__main__":
  main()
