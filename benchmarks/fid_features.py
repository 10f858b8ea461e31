"""FID Inception features per second on CPU: the zoo (JAX/Flax NNX) against pytorch-fid.

Both networks get the SAME weights: pytorch-fid 0.3.0's `InceptionV3([3], resize_input=True,
normalize_input=True, use_fid_inception=True)` is built with its weight download replaced by a
state dict in the released file's layout, seeded by `zoo.convert.seeded.seeded_state_dict(shapes,
seed=0)` and tweaked by tests/golden/inception_common.tweak (activations of a sane size); the
zoo's `inception_fid` loads the same dict through its converter. Before anything is timed, both
run the same batch and the script reports the largest difference of the pool features relative
to their largest value (tests/test_inception.py holds it under 1e-4); it refuses to time above
that.

Inputs are uint8 crops of scikit-image's bundled photos at 256x256 (TiTok's evaluation size),
so both sides resize to 299x299. One timed repetition is one batch:
  zoo:          model.features(x_uint8_nhwc, resize="pytorch_fid")   (jax.block_until_ready):
                uint8 / 255, torch-style bilinear resize, 2x - 1, the network, pool + logits
  zoo_tf1:      the same with resize="tf1" (the zoo's default, torch-fidelity's convention)
  pytorch_fid:  net(x_float_nchw)[0] inside torch.inference_mode() with
                torch.set_num_threads(--threads): resize, 2x - 1, the network, pool only (its
                InceptionV3 has no fc; the zoo's extra 2048x1008 matmul is 0.04% of the work)
Each side takes its input in its own layout and dtype (pytorch-fid's loader would hand it float
[0, 1] NCHW), made before the clock starts. Each batch size is warmed up first (the zoo traces and
compiles there; compile time is reported separately), then the implementations alternate, the
order rotating every repetition so that machine noise hits all. Throughput is batch / median wall
seconds; the median process CPU time per image is recorded too (it moves less with other
people's load than wall time). Defaults: batch 16, 32 and 64, 5 repetitions; about 6 min on 2 cores.

pytorch-fid is imported from wherever Python finds it, or from --pytorch_fid_path. It imports
torchvision, whose PyPI wheel (a CUDA build) fails to import beside the local CPU torch 2.13;
its inception module is pure PyTorch, so when `import torchvision` fails its submodules are
imported under an empty package object (as benchmarks/train_step.py does). To keep pip from
touching .venv's torch, install pytorch-fid alone into a folder of its own:
  .venv/bin/pip install --no-deps --target /tmp/pytorch_fid_pkg pytorch-fid==0.3.0

Usage (results in docs/BENCHMARKS.md):
  .venv/bin/python benchmarks/fid_features.py --pytorch_fid_path /tmp/pytorch_fid_pkg

Prints a table and writes JSON lines (a sanity record, one record per implementation and batch,
a summary per batch and a meta record with versions, CPU, date and command) to --out.
"""
import argparse
import collections
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import statistics
import sys
import time
import types
from unittest import mock

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import titok_throughput  # noqa: E402  (shared helpers: compile timer, CPU model, meta record)
from bench_common import JsonLinesLog  # noqa: E402

MODEL = "inception_fid"
IMAGE_SIZE = 256
SEED = 0
MAX_RELATIVE_DIFF = 1e-4
IMPLS = ("zoo", "zoo_tf1", "pytorch_fid")


def make_images(batch: int) -> np.ndarray:
  """[batch, 256, 256, 3] uint8: titok_throughput's crops of the bundled photos, quantised."""
  return np.round(titok_throughput.make_images(batch) * 255.0).astype(np.uint8)


def import_pytorch_fid(path):
  """pytorch_fid.inception, importing torchvision without its __init__ if that fails."""
  if path is not None:
    sys.path.append(str(path))  # appended: .venv's torch keeps priority
  try:
    importlib.import_module("torchvision")
  except (ImportError, OSError, RuntimeError) as e:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
      raise SystemExit("pytorch-fid needs torchvision (see this script's docstring)") from e
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
      del sys.modules[name]  # the half-imported package
    stub = types.ModuleType("torchvision")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__version__ = importlib.metadata.version("torchvision")
    sys.modules["torchvision"] = stub
    importlib.import_module("torchvision.models")
    stub.models = sys.modules["torchvision.models"]
    print(f"`import torchvision` failed ({type(e).__name__}); using its pure-PyTorch submodules "
          "without the package __init__", flush=True)
  try:
    return importlib.import_module("pytorch_fid.inception")
  except ImportError as e:
    raise SystemExit("pytorch-fid not found: pass --pytorch_fid_path (see this script's "
                     "docstring)") from e


def official_shapes(pfi) -> dict:
  """{key: shape} of fid_inception_v3(), read with its weight loading stubbed out."""
  import torch
  shapes = {}

  def capture(module, *args, **kwargs):
    del args, kwargs
    shapes.update({k: tuple(v.shape) for k, v in module.state_dict().items()})

  with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: None), \
       mock.patch.object(torch.nn.Module, "load_state_dict", capture):
    pfi.fid_inception_v3()
  return shapes


def build_models(pfi):
  """(pytorch-fid InceptionV3, zoo model, number of tensors), holding the same seeded weights."""
  import torch
  from flax import nnx

  import zoo
  from tests.golden.inception_common import tweak
  from zoo.convert.seeded import seeded_state_dict

  state = tweak(seeded_state_dict(official_shapes(pfi), seed=SEED))
  torch_state = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
  with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: torch_state):
    official = pfi.InceptionV3([3], resize_input=True, normalize_input=True,
                               use_fid_inception=True).eval()
  ours = nnx.eval_shape(lambda: zoo.create(MODEL))
  zoo.registry.get(MODEL).load_state_dict(ours, state, model_name=MODEL)
  return official, ours, len(state)


def runners(official, ours):
  """{impl: fn(inputs) -> pool features}; each fn blocks until its result is ready."""
  import jax
  import torch

  def official_run(inputs):
    with torch.inference_mode():
      return official(inputs["nchw_float"])[0][:, :, 0, 0]

  return {
      "zoo": lambda inputs: jax.block_until_ready(
          ours.features(inputs["nhwc_uint8"], resize="pytorch_fid"))["pool"],
      "zoo_tf1": lambda inputs: jax.block_until_ready(
          ours.features(inputs["nhwc_uint8"], resize="tf1"))["pool"],
      "pytorch_fid": official_run,
  }


def clock():
  """(wall seconds, process CPU seconds)."""
  return time.perf_counter(), time.process_time()


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--pytorch_fid_path", type=pathlib.Path, default=None,
                 help="a folder holding the pytorch_fid package (pip install --target)")
  p.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 32, 64])
  p.add_argument("--reps", type=int, default=5, help="timed repetitions per implementation")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
  p.add_argument("--out", type=pathlib.Path,
                 default=ROOT / "benchmarks" / "results" / "fid_features_cpu.jsonl")
  args = p.parse_args()
  if args.reps < 1 or min(args.batch_sizes) < 1:
    p.error("--reps and --batch_sizes must be positive")

  sys.path.insert(0, str(ROOT))  # tests.golden.inception_common
  import jax.numpy as jnp
  import torch
  torch.set_num_threads(args.threads)
  pfi = import_pytorch_fid(args.pytorch_fid_path)
  compile_timer = titok_throughput.CompileTimer()

  log = JsonLinesLog(args.out)

  start = time.perf_counter()
  meta = titok_throughput.meta_record(args, torch.get_num_threads())
  meta.update(model=MODEL, image_size=IMAGE_SIZE, implementations=IMPLS,
              pytorch_fid=importlib.metadata.version("pytorch-fid") if importlib.util.find_spec(
                  "pytorch_fid") else None)
  print(f"{MODEL} on {meta['cpu']}\njax {meta['jax']} / flax {meta['flax']} / torch "
        f"{meta['torch']} ({meta['torch_threads']} torch threads); load average "
        f"{meta['loadavg_start'][0]:.2f}", flush=True)
  t0 = time.perf_counter()
  official, ours, n_tensors = build_models(pfi)
  print(f"built both models with the same {n_tensors} seeded tensors "
        f"({time.perf_counter() - t0:.1f} s)", flush=True)
  run = runners(official, ours)

  summary = []
  for batch in args.batch_sizes:
    x = make_images(batch)
    inputs = {"nhwc_uint8": jnp.asarray(x),
              "nchw_float": torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0)}

    # Warm-up, which is also the sanity check: the zoo compiles here.
    first, compile_s, pools = {}, {}, {}
    for impl in IMPLS:
      before = compile_timer.total()
      w0, _ = clock()
      pools[impl] = np.asarray(run[impl](inputs))
      first[impl] = clock()[0] - w0
      compile_s[impl] = compile_timer.total() - before if impl != "pytorch_fid" else None
    scale = np.abs(pools["pytorch_fid"]).max()
    rel = float(np.abs(pools["zoo"] - pools["pytorch_fid"]).max() / scale)
    rel_tf1 = float(np.abs(pools["zoo_tf1"] - pools["pytorch_fid"]).max() / scale)
    log({"kind": "sanity", "batch": batch, "pool_max_rel_diff_zoo_vs_pytorch_fid": rel,
         "pool_max_rel_diff_zoo_tf1_vs_pytorch_fid": rel_tf1})
    print(f"batch {batch}: pool max |zoo - pytorch_fid| / max {rel:.2e} (tf1 resize instead: "
          f"{rel_tf1:.2e}); first calls " + ", ".join(
              f"{k} {v:.1f} s" for k, v in first.items()) + "; JAX compile " + ", ".join(
              f"{k} {v:.1f} s" for k, v in compile_s.items() if v is not None), flush=True)
    if rel > MAX_RELATIVE_DIFF:
      raise SystemExit(f"the zoo and pytorch-fid disagree ({rel:.2e} > {MAX_RELATIVE_DIFF}); "
                       "not timing")

    times = {impl: collections.defaultdict(list) for impl in IMPLS}
    for r in range(args.reps):
      order = IMPLS[r % len(IMPLS):] + IMPLS[:r % len(IMPLS)]
      for impl in order:
        w0, c0 = clock()
        run[impl](inputs)
        w1, c1 = clock()
        times[impl]["wall_s"].append(w1 - w0)
        times[impl]["process_cpu_s"].append(c1 - c0)
      print(f"  rep {r + 1}/{args.reps} " + "  ".join(
          f"{impl} {batch / times[impl]['wall_s'][-1]:.2f} img/s" for impl in IMPLS), flush=True)

    rates, cpu = {}, {}
    for impl, t in times.items():
      rates[impl] = batch / statistics.median(t["wall_s"])
      cpu[impl] = statistics.median(t["process_cpu_s"]) / batch
      log({"kind": "throughput", "impl": impl, "batch": batch, "reps": args.reps, **t,
           "median_wall_s": statistics.median(t["wall_s"]), "images_per_s": rates[impl],
           "median_process_cpu_s_per_image": cpu[impl], "first_call_s": first[impl],
           "jax_compile_s": compile_s[impl]})
    row = {"kind": "summary", "batch": batch, "zoo_images_per_s": rates["zoo"],
           "zoo_tf1_images_per_s": rates["zoo_tf1"],
           "pytorch_fid_images_per_s": rates["pytorch_fid"],
           "ratio_zoo_over_pytorch_fid": rates["zoo"] / rates["pytorch_fid"],
           "zoo_cpu_s_per_image": cpu["zoo"], "pytorch_fid_cpu_s_per_image": cpu["pytorch_fid"],
           "zoo_jax_compile_s": compile_s["zoo"], "pool_max_rel_diff": rel}
    log(row)
    summary.append(row)

  meta["loadavg_end"] = os.getloadavg()
  meta["wall_s"] = time.perf_counter() - start
  log(meta)
  log.close()

  print(f"\n{MODEL} features (pool + logits; pytorch-fid: pool), {IMAGE_SIZE}x{IMAGE_SIZE} uint8 "
        f"-> 299, median of {args.reps} reps")
  print("| batch | zoo img/s | zoo tf1 img/s | pytorch-fid img/s | ratio zoo/pytorch-fid "
        "| zoo CPU-s/img | pytorch-fid CPU-s/img | zoo compile s |")
  print("|---:|---:|---:|---:|---:|---:|---:|---:|")
  for row in summary:
    print(f"| {row['batch']} | {row['zoo_images_per_s']:.2f} | {row['zoo_tf1_images_per_s']:.2f} "
          f"| {row['pytorch_fid_images_per_s']:.2f} | {row['ratio_zoo_over_pytorch_fid']:.2f} | "
          f"{row['zoo_cpu_s_per_image']:.3f} | {row['pytorch_fid_cpu_s_per_image']:.3f} | "
          f"{row['zoo_jax_compile_s']:.1f} |")
  print(f"wrote {args.out} ({meta['wall_s']:.0f} s)")


if __name__ == "__main__":
  main()
