"""TiTok-S-128 encode+decode throughput: the zoo (JAX/Flax NNX) against the official PyTorch code.

Both models get the SAME weights: the official TiTok is built from the released inference config
(configs/infer/TiTok/titok_s128.yaml, crop 256), its state-dict key/shape table is filled by
`zoo.convert.seeded.seeded_state_dict(shapes, seed=0)`, and that one state dict is loaded into the
official model (`load_state_dict(strict=True)`) and into ours (through the zoo's converter). Before
anything is timed, both encode the same batch and the script reports how many token ids agree and
the largest difference between the decoded images.

One timed repetition is one encode+decode of a batch of 256x256 RGB images:
  zoo:       ids = model.encode(x); y = model.decode(ids)            (jax.block_until_ready)
  official:  z, d = model.encode(x); model.decode_tokens(d["min_encoding_indices"])
             inside torch.inference_mode(), with torch.set_num_threads(--threads)
Each side takes its input in its own layout (NHWC jax array / NCHW torch tensor), made before the
clock starts. Each batch size is warmed up first (one call each; for the zoo this is where
`nnx.jit` traces and XLA compiles, reported separately as compile time), then the two
implementations alternate, the order flipping every repetition so that machine noise hits both.
The reported throughput is batch / median(wall seconds per repetition). The process CPU time of
each repetition is recorded too (CPU-s/img): on a shared machine it moves less with other
people's load than wall time does, though it also counts threads that spin while they wait.
With the defaults (batch 8 and 32, 3 repetitions) a run took 5.5 min on 2 idle cores and 11 min
on the same machine under a load average of about 5.

`--breakdown [B ...]` also times the stages of both (encoder ViT, quantizer, decoder ViT with the
code lookup, softmax code mixing + MaskGIT pixel CNN), at the given batch sizes (default: the
smallest of --batch_sizes), and the per-call cost of passing the TiTok module through `nnx.jit`;
`--skip_throughput` runs only that.

The official code is imported from a local checkout (never copied into this repo):
  git clone https://github.com/bytedance/1d-tokenizer /tmp/official/1d-tokenizer
Besides the zoo's own dependencies it needs torch (the CPU build; `pip install -e .[torch]`),
einops, omegaconf and accelerate (accelerate is only imported by the official quantizer):
  .venv/bin/pip install --dry-run omegaconf accelerate   # check it does not replace torch
  .venv/bin/pip install omegaconf accelerate

Usage (results in docs/BENCHMARKS.md):
  .venv/bin/python benchmarks/titok_throughput.py --official_repo /tmp/official/1d-tokenizer \
      --batch_sizes 8 32 --reps 3
  .venv/bin/python benchmarks/titok_throughput.py --official_repo /tmp/official/1d-tokenizer \
      --skip_throughput --breakdown 8 32 --reps 3 --out benchmarks/results/titok_stages.jsonl

Prints a table and writes JSON lines (one record per measurement, plus a meta record with the
versions, CPU, date and command) to --out.
"""
import argparse
import collections
import contextlib
import datetime
import importlib
import importlib.metadata
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import time
import types
import warnings

import numpy as np

from bench_common import JsonLinesLog

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = "titok_s128"
CONFIG = "configs/infer/TiTok/titok_s128.yaml"
IMAGE_SIZE = 256
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "colorwheel")
JAX_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                      "/jax/core/compile/jaxpr_to_mlir_module_duration",
                      "/jax/core/compile/backend_compile_duration")


# -- inputs ------------------------------------------------------------------------------------
def make_images(batch: int) -> np.ndarray:
  """[batch, 256, 256, 3] float32 in [0, 1]: square crops of scikit-image's bundled photos.

  Image i uses photo i % 8 and a crop whose size and position depend on i // 8, so a batch of 32
  holds 32 different images. Deterministic, no download.
  """
  import skimage.data
  from skimage.transform import resize
  out = []
  for i in range(batch):
    photo = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[..., :3]
    h, w = photo.shape[:2]
    round_ = i // len(PHOTOS)
    side = int(min(h, w) * (1.0 - 0.15 * (round_ % 4)))
    top = (h - side) * ((round_ * 3) % 5) // 4
    left = (w - side) * ((round_ * 7 + 2) % 5) // 4
    crop = photo[top:top + side, left:left + side]
    out.append(resize(crop, (IMAGE_SIZE, IMAGE_SIZE), anti_aliasing=True, preserve_range=True))
  return (np.stack(out) / 255.0).clip(0.0, 1.0).astype(np.float32)


# -- the two models ----------------------------------------------------------------------------
def load_official_titok(repo: pathlib.Path):
  """`modeling.titok` from the checkout, skipping modeling/modules/__init__.py.

  That __init__ imports the training losses (torchvision, LPIPS, ...), which inference does not
  need; an empty package with the right __path__ stands in for it, so Python loads only the
  submodules that modeling/titok.py itself imports.
  """
  if not (repo / "modeling" / "titok.py").is_file():
    raise FileNotFoundError(f"--official_repo {repo} has no modeling/titok.py; pass a checkout of "
                            "github.com/bytedance/1d-tokenizer")
  sys.path.insert(0, str(repo))
  importlib.import_module("modeling")
  stub = types.ModuleType("modeling.modules")
  stub.__path__ = [str(repo / "modeling" / "modules")]
  sys.modules["modeling.modules"] = stub
  try:
    return importlib.import_module("modeling.titok")
  except ImportError as e:
    raise SystemExit(f"the official TiTok needs {e.name!r}: pip install omegaconf accelerate "
                     "einops (see this script's docstring)") from e


def build_models(repo: pathlib.Path):
  """(official torch model, zoo model, number of tensors), both holding the same seeded weights."""
  import torch
  from flax import nnx
  from omegaconf import OmegaConf

  import zoo
  from zoo import registry
  from zoo.convert.seeded import seeded_state_dict

  official_titok = load_official_titok(repo)
  conf = OmegaConf.load(repo / CONFIG)
  conf.dataset = {"preprocessing": {"crop_size": IMAGE_SIZE}}
  official = official_titok.TiTok(conf)
  shapes = {k: tuple(v.shape) for k, v in official.state_dict().items()}
  state = seeded_state_dict(shapes, seed=0)
  official.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
  official.eval()

  ours = nnx.eval_shape(lambda: zoo.create(MODEL))
  registry.get(MODEL).load_state_dict(ours, state, model_name=MODEL)
  return official, ours, len(state)


# -- one encode+decode, timed by stage -----------------------------------------------------------
def run_zoo(model, x):
  """(ids, images, encode seconds, decode seconds)."""
  import jax
  t0 = time.perf_counter()
  ids = jax.block_until_ready(model.encode(x))
  t1 = time.perf_counter()
  y = jax.block_until_ready(model.decode(ids))
  t2 = time.perf_counter()
  return ids, y, t1 - t0, t2 - t1


def run_official(model, x):
  """(ids [B, K], images NCHW, encode seconds, decode seconds)."""
  import torch
  with torch.inference_mode():
    t0 = time.perf_counter()
    _, result = model.encode(x)
    t1 = time.perf_counter()
    y = model.decode_tokens(result["min_encoding_indices"])
    t2 = time.perf_counter()
  ids = result["min_encoding_indices"]
  return ids.reshape(ids.shape[0], -1), y, t1 - t0, t2 - t1


class CompileTimer:
  """Sums JAX's own trace / lower / XLA-compile durations (jax.monitoring events)."""

  def __init__(self):
    import jax
    self.seconds = collections.defaultdict(float)
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event, duration, **_):
    if event in JAX_COMPILE_EVENTS:
      self.seconds[event] += duration

  def total(self) -> float:
    return sum(self.seconds.values())


# -- stage breakdown -----------------------------------------------------------------------------
def zoo_stage_fns(model):
  """The zoo's encode+decode cut at the same places as `time_official_stages`, one jit each.

  Each stage is a plain `jax.jit` over the split model state, so that what is timed is the
  stage's compute; the per-call cost of passing the whole module through `nnx.jit` (what
  `TiTok.encode`/`decode` pay) is measured on its own by `dispatch_overheads`.
  """
  import jax
  import jax.numpy as jnp
  from flax import nnx

  graphdef, state = nnx.split(model)

  def stage(body):
    jitted = jax.jit(lambda st, x: body(nnx.merge(graphdef, st), x))
    return lambda x: jitted(state, x)

  def mix_pixel_cnn(m, logits):
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    codes = jnp.einsum("bhwn,nc->bhwc", probs, m.pixel_quantize.embedding[...],
                       precision=jax.lax.Precision.HIGHEST)
    return jnp.clip(m.pixel_decoder(codes), 0.0, 1.0)

  return [("encoder_vit", stage(lambda m, x: m.encode_latents(x))),
          ("quantizer", stage(lambda m, z: m.quantize(z)[1]["ids"])),
          ("decoder_vit+lookup", stage(lambda m, ids: m.decoder(m.quantize.lookup(ids)))),
          ("mix+pixel_cnn", stage(mix_pixel_cnn))]


def clock():
  """(wall seconds, process CPU seconds)."""
  return time.perf_counter(), time.process_time()


def time_zoo_stages(fns, x):
  """{stage: (wall s, CPU s)} of one encode+decode through the stage functions."""
  import jax
  out, times = x, {}
  for name, fn in fns:
    w0, c0 = clock()
    out = jax.block_until_ready(fn(out))
    w1, c1 = clock()
    times[name] = (w1 - w0, c1 - c0)
  return times


def dispatch_overheads(model, calls=50):
  """Median seconds per call of a jitted no-op that takes the TiTok module, by calling style.

  `nnx.jit` with default settings is how `TiTok.encode` and `TiTok.decode` are compiled; the
  others are cheaper ways to hand the same module to a jitted function.
  """
  import jax
  import jax.numpy as jnp
  from flax import nnx

  v = jnp.ones((4,))
  graphdef, state = nnx.split(model)
  split_jit = jax.jit(lambda st, x: x + 1)
  styles = {
      "nnx.jit(model, x) [default, as TiTok.encode/decode]": (
          lambda f: lambda: f(model, v))(nnx.jit(lambda m, x: x + 1)),
      "nnx.jit(graph=False)(model, x)": (
          lambda f: lambda: f(model, v))(nnx.jit(lambda m, x: x + 1, graph=False)),
      "nnx.jit_partial(fn, model, graph=False)(x)": (
          lambda f: lambda: f(v))(nnx.jit_partial(lambda m, x: x + 1, model, graph=False)),
      "jax.jit(state, x) after nnx.split": lambda: split_jit(state, v),
  }
  out = {}
  for name, call in styles.items():
    jax.block_until_ready(call())
    times = []
    for _ in range(calls):
      t0 = time.perf_counter()
      jax.block_until_ready(call())
      times.append(time.perf_counter() - t0)
    out[name] = statistics.median(times)
  return out


def time_official_stages(model, x):
  """{stage: (wall s, CPU s)} of one real encode+decode call, cut by forward hooks."""
  import torch
  ends, handles = {}, []
  for name in ("encoder", "decoder"):
    handles.append(getattr(model, name).register_forward_hook(
        lambda *_, n=name: ends.__setitem__(n, clock())))
  try:
    with torch.inference_mode():
      t0 = clock()
      _, result = model.encode(x)
      t1 = clock()
      model.decode_tokens(result["min_encoding_indices"])
      t2 = clock()
  finally:
    for h in handles:
      h.remove()
  cuts = {"encoder_vit": (t0, ends["encoder"]), "quantizer": (ends["encoder"], t1),
          "decoder_vit+lookup": (t1, ends["decoder"]), "mix+pixel_cnn": (ends["decoder"], t2)}
  return {k: (b[0] - a[0], b[1] - a[1]) for k, (a, b) in cuts.items()}


def breakdown(official, ours, x_np, reps, log):
  import jax.numpy as jnp
  import torch
  fns = zoo_stage_fns(ours)
  xj = jnp.asarray(x_np)
  xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
  time_zoo_stages(fns, xj)  # compile
  time_official_stages(official, xt)  # warm-up
  zoo_t, off_t = collections.defaultdict(list), collections.defaultdict(list)
  for r in range(reps):
    order = ("zoo", "official") if r % 2 == 0 else ("official", "zoo")
    for impl in order:
      stage_times = time_zoo_stages(fns, xj) if impl == "zoo" else time_official_stages(
          official, xt)
      for k, v in stage_times.items():
        (zoo_t if impl == "zoo" else off_t)[k].append(v)
  rows = []
  batch = len(x_np)
  for name, _ in fns:
    zw, zc = zip(*zoo_t[name])
    ow, oc = zip(*off_t[name])
    rows.append({"kind": "stage", "batch": batch, "stage": name, "reps": reps,
                 "zoo_wall_s": zw, "official_wall_s": ow, "zoo_cpu_s": zc, "official_cpu_s": oc,
                 "zoo_median_wall_s": statistics.median(zw),
                 "official_median_wall_s": statistics.median(ow),
                 "zoo_cpu_ms_per_image": 1e3 * statistics.median(zc) / batch,
                 "official_cpu_ms_per_image": 1e3 * statistics.median(oc) / batch})
    log(rows[-1])
  return rows


# -- environment ---------------------------------------------------------------------------------
def cpu_model() -> str:
  with contextlib.suppress(Exception):
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return ", ".join(f"{k}: {fields[k].strip()}" for k in
                     ("Model name", "CPU family", "Model", "CPU(s)", "Thread(s) per core",
                      "Hypervisor vendor") if k in fields)
  return platform.processor() or "unknown"


def meta_record(args, threads):
  import flax
  import jax
  import torch
  return {
      "kind": "meta",
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
      "model": MODEL, "image_size": IMAGE_SIZE, "batch_sizes": args.batch_sizes, "reps": args.reps,
      "python": platform.python_version(), "jax": jax.__version__,
      "jaxlib": importlib.metadata.version("jaxlib"),
      "flax": flax.__version__, "torch": torch.__version__, "numpy": np.__version__,
      "jax_backend": jax.default_backend(), "jax_devices": [str(d) for d in jax.devices()],
      "torch_threads": threads, "cpu": cpu_model(), "os_cpu_count": os.cpu_count(),
      "loadavg_start": os.getloadavg(),
  }


# -- main ----------------------------------------------------------------------------------------
def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", type=pathlib.Path, required=True,
                 help="checkout of github.com/bytedance/1d-tokenizer")
  p.add_argument("--batch_sizes", type=int, nargs="+", default=[8, 32])
  p.add_argument("--reps", type=int, default=3, help="timed repetitions per implementation")
  p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
  p.add_argument("--breakdown", type=int, nargs="*", default=None, metavar="BATCH",
                 help="also time the stages of both (at these batch sizes; none given: the "
                      "smallest of --batch_sizes), and the per-call dispatch cost")
  p.add_argument("--skip_throughput", action="store_true",
                 help="only the --breakdown measurements")
  p.add_argument("--out", type=pathlib.Path,
                 default=ROOT / "benchmarks" / "results" / "titok_throughput.jsonl")
  args = p.parse_args()
  if args.reps < 1 or min(args.batch_sizes) < 1:
    p.error("--reps and --batch_sizes must be positive")
  if args.breakdown is not None and not args.breakdown:
    args.breakdown = [min(args.batch_sizes)]
  args.breakdown = args.breakdown or []
  if args.skip_throughput and not args.breakdown:
    p.error("--skip_throughput needs --breakdown")

  warnings.filterwarnings("ignore", category=FutureWarning)  # torch.cuda.amp.autocast in official
  import jax
  import jax.numpy as jnp
  import torch
  torch.set_num_threads(args.threads)
  compile_timer = CompileTimer()

  log = JsonLinesLog(args.out)

  start = time.perf_counter()
  meta = meta_record(args, torch.get_num_threads())
  print(f"{MODEL} on {meta['cpu']}\njax {meta['jax']} / flax {meta['flax']} / torch "
        f"{meta['torch']} ({meta['torch_threads']} torch threads); load average "
        f"{meta['loadavg_start'][0]:.2f}", flush=True)
  t0 = time.perf_counter()
  official, ours, n_tensors = build_models(args.official_repo.resolve())
  print(f"built both models with the same {n_tensors} seeded tensors "
        f"({time.perf_counter() - t0:.1f} s)", flush=True)

  summary = []
  for batch in [] if args.skip_throughput else args.batch_sizes:
    x_np = make_images(batch)
    xj = jax.block_until_ready(jnp.asarray(x_np))
    xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()

    # Warm-up, which is also the sanity check: the zoo compiles here.
    compile_before = compile_timer.total()
    ids_z, y_z, enc, dec = run_zoo(ours, xj)
    zoo_first, zoo_compile = enc + dec, compile_timer.total() - compile_before
    ids_o, y_o, enc, dec = run_official(official, xt)
    official_first = enc + dec
    ids_z, ids_o = np.asarray(ids_z), ids_o.numpy()
    agree = float(np.mean(ids_z == ids_o))
    y_o = y_o.clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()  # zoo's decode clips by default
    max_diff = float(np.max(np.abs(np.asarray(y_z) - y_o)))
    log({"kind": "sanity", "batch": batch, "ids_agreement": agree, "ids_shape": list(ids_z.shape),
         "decoded_max_abs_diff": max_diff})
    print(f"batch {batch}: ids agree {agree:.6f}, decoded max |diff| {max_diff:.2e}; zoo first "
          f"call {zoo_first:.1f} s (JAX trace+compile {zoo_compile:.1f} s), official first call "
          f"{official_first:.1f} s", flush=True)
    if agree < 0.99:
      raise SystemExit(f"the two models disagree on {1 - agree:.2%} of the ids; not timing")

    times = {"zoo": collections.defaultdict(list), "official": collections.defaultdict(list)}
    for r in range(args.reps):
      order = ("zoo", "official") if r % 2 == 0 else ("official", "zoo")
      for impl in order:
        cpu0 = time.process_time()
        if impl == "zoo":
          _, _, enc, dec = run_zoo(ours, xj)
        else:
          _, _, enc, dec = run_official(official, xt)
        cpu = time.process_time() - cpu0
        times[impl]["encode_s"].append(enc)
        times[impl]["decode_s"].append(dec)
        times[impl]["total_s"].append(enc + dec)
        times[impl]["process_cpu_s"].append(cpu)
        print(f"  rep {r + 1}/{args.reps} {impl:8s} encode {enc:6.2f} s  decode {dec:6.2f} s  "
              f"-> {batch / (enc + dec):.3f} img/s  ({cpu / batch:.2f} CPU-s/img)", flush=True)

    rates = {}
    for impl, t in times.items():
      rates[impl] = batch / statistics.median(t["total_s"])
      log({"kind": "throughput", "impl": impl, "batch": batch, "reps": args.reps, **t,
           "median_encode_s": statistics.median(t["encode_s"]),
           "median_decode_s": statistics.median(t["decode_s"]),
           "median_total_s": statistics.median(t["total_s"]), "images_per_s": rates[impl],
           "median_process_cpu_s_per_image": statistics.median(t["process_cpu_s"]) / batch,
           "first_call_s": zoo_first if impl == "zoo" else official_first,
           "jax_compile_s": zoo_compile if impl == "zoo" else None})
    row = {"kind": "summary", "batch": batch, "zoo_images_per_s": rates["zoo"],
           "official_images_per_s": rates["official"],
           "ratio_zoo_over_official": rates["zoo"] / rates["official"],
           "zoo_cpu_s_per_image": statistics.median(times["zoo"]["process_cpu_s"]) / batch,
           "official_cpu_s_per_image": (
               statistics.median(times["official"]["process_cpu_s"]) / batch),
           "zoo_jax_compile_s": zoo_compile, "ids_agreement": agree}
    log(row)
    summary.append(row)

  stages, overheads = [], {}
  for batch in args.breakdown:
    print(f"stage breakdown at batch {batch} ...", flush=True)
    stages += breakdown(official, ours, make_images(batch), args.reps, log)
  if args.breakdown:
    overheads = dispatch_overheads(ours)
    log({"kind": "dispatch_overhead", "seconds_per_call": overheads})

  meta["loadavg_end"] = os.getloadavg()
  meta["wall_s"] = time.perf_counter() - start
  log(meta)
  log.close()

  if summary:
    print(f"\n{MODEL} encode+decode, {IMAGE_SIZE}x{IMAGE_SIZE}, median of {args.reps} reps "
          f"(images/s)")
    print("| batch | zoo img/s | official img/s | ratio zoo/official | zoo CPU-s/img "
          "| official CPU-s/img | zoo compile s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
  for row in summary:
    print(f"| {row['batch']} | {row['zoo_images_per_s']:.3f} | "
          f"{row['official_images_per_s']:.3f} | {row['ratio_zoo_over_official']:.2f} | "
          f"{row['zoo_cpu_s_per_image']:.2f} | {row['official_cpu_s_per_image']:.2f} | "
          f"{row['zoo_jax_compile_s']:.1f} |")
  if stages:
    print(f"\nstages, median of {args.reps} reps (wall s; process CPU ms per image)")
    print("| batch | stage | zoo wall s | official wall s | zoo CPU ms/img | official CPU ms/img |")
    print("|---:|---|---:|---:|---:|---:|")
    for s in stages:
      print(f"| {s['batch']} | {s['stage']} | {s['zoo_median_wall_s']:.3f} | "
            f"{s['official_median_wall_s']:.3f} | {s['zoo_cpu_ms_per_image']:.0f} | "
            f"{s['official_cpu_ms_per_image']:.0f} |")
  if overheads:
    print("\nper-call cost of handing the TiTok module to a jitted no-op (ms)")
    for name, sec in overheads.items():
      print(f"  {sec * 1e3:8.3f}  {name}")
  print(f"\nwall {meta['wall_s']:.0f} s; load average {meta['loadavg_start'][0]:.2f} -> "
        f"{meta['loadavg_end'][0]:.2f}; results in {args.out}")


if __name__ == "__main__":
  main()
