"""TiTok-S-128 stage-2 training step: the zoo (JAX, zoo/train/trainer.py) against the official
PyTorch step with the same losses, on CPU.

What one step is, on each side (the GAN active: discriminator_start = 0 on both):
  zoo:       `Trainer.train_step_fn(step)(state, images, trainer.net_params)` of a Trainer built
             from `zoo/configs/titok.py:get_config("titok_s128_stage2")` (batch_size = --batch,
             1-device mesh): the one jitted program the training loop calls (it donates the state),
             with jax.block_until_ready on its outputs; nothing is logged, evaluated or saved.
  official:  the body of utils/train_utils.py `train_one_epoch` for TiTok stage 2, driven here
             (train_utils.py itself imports webdataset, open_clip, torchinfo, the evaluator, ...):
             TiTok forward (finetune_decoder: frozen encoder / latent tokens / quantizer under
             no_grad), `ReconstructionLoss_Stage2(mode="generator")` (L2 + 0.1 x ConvNeXt-S
             logits MSE at 224 + 0.01 x hinge generator loss), the `.item()` of every logged
             loss, backward, clip_grad_norm_(1.0), AdamW step + cosine LR scheduler step,
             zero_grad; then `mode="discriminator"` (hinge + 0.001 LeCam), backward, clip, its
             own AdamW + scheduler step; then the EMA update (`EMAModel.step`, use_ema: True).
             The optimizers are built as `create_optimizer` builds them (torch AdamW, the same
             no-decay groups, lr 1e-4, betas (0.9, 0.999), weight decay 1e-4), the schedulers
             by `utils.lr_schedulers`.
The official config trains in fp16 mixed precision (accelerate) with TF32 on GPUs; on CPU both
sides run in float32 (no autocast, zoo config dtype float32). The official run uses
per_gpu_batch_size 32; the default here is batch 4: on 2 cores a step takes about a minute per
side, and at batch 8 the zoo's step alone needs ~20 GiB (XLA:CPU reports 8.6 GB of temporary
buffers for the batch-4 program, and the process peaks at ~14 GiB), which a 23 GiB machine
shared with other work could not hold (the run was OOM-killed). `--batch 8` works with more
memory; the official step at batch 8 peaks at ~12 GiB.

Both sides get the SAME weights, filled by `zoo.convert.seeded.seeded_state_dict(shapes, seed=0)`
from the official key/shape tables and loaded into the official modules (load_state_dict, strict)
and into the zoo through its converters:
  TiTok          official state dict -> `zoo.registry.get("titok_s128").load_state_dict`; the zoo
                 side replaces the Trainer's params and EMA with them, as Trainer._warm_start does
                 with a stage-1 run's weights (the Adam moments start at zero either way).
  ConvNeXt-S     torchvision's `convnext_small(weights=None)` table, seeded, with the LayerNorm
                 scales moved near 1 (tests/golden/perception_seeding.py `tweak`, as the perception
                 goldens do); the official PerceptualLoss is handed that module instead of the
                 ImageNet download, the zoo reads the same tensors from a .safetensors file given as
                 `config.perceptual_checkpoints.convnext` (the path a released file takes).
  discriminator  NLayerDiscriminator parameters seeded (the fixed blur kernels kept) ->
                 zoo/convert/nlayer_discriminator.py -> the Trainer's `disc_params`.
Nothing is downloaded. Before timing, the first step of each side (same weights, same batch)
is compared: L2, perceptual, GAN and discriminator losses, LeCam, the mean logits, and the
generator's / discriminator's gradient norms before clipping.

Protocol (as benchmarks/titok_throughput.py): one warm-up step per side (the zoo's first call is
where jax traces and XLA compiles; JAX's own trace/lower/compile durations are reported as the
compile time), then --reps timed steps per side, alternating, the order flipping every repetition.
Reported: median wall seconds per step, and median process CPU seconds per step (all threads).
Each side keeps training its own copy of the weights across repetitions (a step's cost does not
depend on the weight values). torch runs with torch.set_num_threads(--threads), default
os.cpu_count(); XLA:CPU uses all cores.

The official code is imported from a local checkout (never copied into this repo):
  git clone https://github.com/bytedance/1d-tokenizer /tmp/official/1d-tokenizer
It needs, besides the zoo and the CPU torch, einops, omegaconf, accelerate (see
benchmarks/titok_throughput.py), requests and tqdm (imported by its lpips.py) and torchvision
(its perceptual loss builds torchvision's convnext_small). torchvision must be the release built
for the installed torch (torch 2.13 -> torchvision 0.28); check that pip does not replace torch:
  .venv/bin/pip install --dry-run torchvision==0.28.0 && .venv/bin/pip install torchvision==0.28.0
The PyPI wheel is a CUDA build whose C++ ops (nms, roi_align, ...) do not load against the CPU
torch, and its package __init__ then fails; ConvNeXt is pure PyTorch, so when `import torchvision`
fails this script imports torchvision's submodules under an empty package object instead.

Usage (results in docs/BENCHMARKS.md):
  .venv/bin/python benchmarks/train_step.py --official_repo /tmp/official/1d-tokenizer \
      --batch 4 --reps 3

Prints a table and writes JSON lines (the loss comparison, one record per implementation, a
summary and a meta record with the versions, CPU, date and command) to --out.
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
import tempfile
import time
import types
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import titok_throughput  # noqa: E402  (shared helpers: images, official import, timers, meta)
from bench_common import JsonLinesLog  # noqa: E402

ZOO_CONFIG = "titok_s128_stage2"
OFFICIAL_CONFIG = "configs/training/TiTok/stage2/titok_s128.yaml"
SEED = 0
# (label, zoo metric, official log key, scale applied to the official value)
LOSSES = (("L2", "pixel_l2", "reconstruction_loss", 1.0),
          ("perceptual (ConvNeXt logits MSE)", "perceptual", "perceptual_loss", 1 / 0.1),
          ("GAN generator -mean(D(fake))", "gan_loss", "gan_loss", 1.0),
          ("weighted GAN term", "weighted_gan_loss", "weighted_gan_loss", 1.0),
          ("generator total", "loss", "total_loss", 1.0),
          ("generator grad norm", "grad_norm", "grad_norm", 1.0),
          ("discriminator loss", "discriminator_loss", "discriminator_loss", 1.0),
          ("LeCam (weighted)", "lecam_loss", "lecam_loss", 1.0),
          ("mean D(real)", "logits_real", "logits_real", 1.0),
          ("mean D(fake)", "logits_fake", "logits_fake", 1.0),
          ("discriminator grad norm", "discriminator_grad_norm", "discriminator_grad_norm", 1.0))


# -- torchvision and the official training modules -------------------------------------------
def import_torchvision_models():
  """`torchvision.models`, importing torchvision without its __init__ if that fails."""
  try:
    import torchvision.models
    return torchvision.models
  except (ImportError, OSError, RuntimeError) as e:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
      raise SystemExit("the official perceptual loss needs torchvision (see this script's "
                       "docstring)") from e
    reason = f"{type(e).__name__}: {e}"
  for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
    del sys.modules[name]  # the half-imported package
  stub = types.ModuleType("torchvision")
  stub.__path__ = list(spec.submodule_search_locations)
  stub.__version__ = importlib.metadata.version("torchvision")
  sys.modules["torchvision"] = stub
  print(f"`import torchvision` failed ({reason.splitlines()[0][:100]}); using its pure-PyTorch "
        "submodules without the package __init__", flush=True)
  return importlib.import_module("torchvision.models")


def load_official_training(repo: pathlib.Path):
  """(modeling.titok, modeling.modules.losses, modeling.modules.ema_model, utils.lr_schedulers)."""
  titok = titok_throughput.load_official_titok(repo)  # puts repo on sys.path, stubs modules/
  import_torchvision_models()
  try:
    losses = importlib.import_module("modeling.modules.losses")
  except ImportError as e:
    raise SystemExit(f"the official losses need {e.name!r} (see this script's docstring)") from e
  return (titok, losses, importlib.import_module("modeling.modules.ema_model"),
          importlib.import_module("utils.lr_schedulers"))


def seeded_params(module, tweak_family=None) -> dict:
  """{name: array} for `module`'s parameters, seeded; buffers keep the module's own values."""
  from zoo.convert.seeded import seeded_state_dict
  params = dict(module.named_parameters())
  state = seeded_state_dict({k: tuple(v.shape) for k, v in params.items()}, seed=SEED)
  if tweak_family:
    state = load_tweak()(tweak_family, state)
  buffers = {k: v.detach().numpy() for k, v in module.state_dict().items() if k not in params}
  return {**buffers, **state}


def load_tweak():
  spec = importlib.util.spec_from_file_location(
      "perception_seeding", ROOT / "tests" / "golden" / "perception_seeding.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.tweak


def load_torch(module, state: dict):
  import torch
  module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
                         strict=True)


class OfficialStage2Step:
  """The official stage-2 training step (train_one_epoch's body, one process, no accelerate)."""

  def __init__(self, repo: pathlib.Path, batch: int):
    import torch
    from omegaconf import OmegaConf

    from zoo.convert.seeded import seeded_state_dict
    titok, losses, ema_model, lr_schedulers = load_official_training(repo)
    conf = OmegaConf.load(repo / OFFICIAL_CONFIG)
    conf.losses.discriminator_start = 0  # the GAN from the first step on
    conf.training.per_gpu_batch_size = batch
    self.conf = conf

    # As benchmarks/titok_throughput.py: every tensor of the state dict seeded.
    self.model = titok.TiTok(conf)
    self.titok_state = seeded_state_dict(
        {k: tuple(v.shape) for k, v in self.model.state_dict().items()}, seed=SEED)
    load_torch(self.model, self.titok_state)

    # PerceptualLoss builds convnext_small(weights=IMAGENET1K_V1): hand it the seeded one.
    perceptual = sys.modules["modeling.modules.perceptual_loss"]
    convnext = perceptual.models.convnext_small(weights=None)
    self.convnext_state = seeded_params(convnext, "convnext_small")
    load_torch(convnext, self.convnext_state)
    original = perceptual.models.convnext_small
    perceptual.models.convnext_small = lambda *a, **k: convnext
    try:
      self.loss_module = losses.ReconstructionLoss_Stage2(conf)
    finally:
      perceptual.models.convnext_small = original
    assert self.loss_module.perceptual_loss.convnext is convnext
    self.disc_state = seeded_params(self.loss_module.discriminator)
    load_torch(self.loss_module.discriminator, self.disc_state)

    # utils/train_utils.py create_optimizer / create_lr_scheduler / create_model_and_loss_module.
    opt = conf.optimizer.params
    exclude = (lambda n, p: p.ndim < 2 or "ln" in n or "bias" in n or "latent_tokens" in n
               or "mask_token" in n or "embedding" in n or "norm" in n or "gamma" in n
               or "embed" in n)

    def adamw(module, lr):
      named = list(module.named_parameters())
      return torch.optim.AdamW(
          [{"params": [p for n, p in named if exclude(n, p) and p.requires_grad],
            "weight_decay": 0.0},
           {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad],
            "weight_decay": opt.weight_decay}],
          lr=lr, betas=(opt.beta1, opt.beta2))

    self.optimizer = adamw(self.model, opt.learning_rate)
    self.disc_optimizer = adamw(self.loss_module, opt.discriminator_learning_rate)
    sched = conf.lr_scheduler
    self.lr_scheduler = lr_schedulers.get_scheduler(
        sched.scheduler, optimizer=self.optimizer,
        num_training_steps=conf.training.max_train_steps,
        num_warmup_steps=sched.params.warmup_steps, base_lr=sched.params.learning_rate,
        end_lr=sched.params.end_lr)
    self.disc_lr_scheduler = lr_schedulers.get_scheduler(
        sched.scheduler, optimizer=self.disc_optimizer,
        num_training_steps=conf.training.max_train_steps - conf.losses.discriminator_start,
        num_warmup_steps=sched.params.warmup_steps, base_lr=sched.params.learning_rate,
        end_lr=sched.params.end_lr)
    self.ema = ema_model.EMAModel(self.model.parameters(), decay=0.999)
    self.global_step = 0
    self.n_trained = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

  def __call__(self, images) -> dict:
    """One step on NCHW float32 images in [0, 1]; returns the logged values."""
    import torch
    max_norm = self.conf.training.max_grad_norm
    self.model.train()
    reconstructed, extra = self.model(images)
    loss, loss_dict = self.loss_module(images, reconstructed, extra, self.global_step,
                                       mode="generator")
    logs = {k: float(v) for k, v in loss_dict.items()}  # the loop's .item() for logging
    loss.backward()
    logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
    self.optimizer.step()
    self.lr_scheduler.step()
    self.optimizer.zero_grad(set_to_none=True)
    if self.loss_module.should_discriminator_be_trained(self.global_step):
      d_loss, d_dict = self.loss_module(images, reconstructed, extra,
                                        global_step=self.global_step, mode="discriminator")
      logs.update({k: float(v) for k, v in d_dict.items()})
      d_loss.backward()
      logs["discriminator_grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
          self.loss_module.parameters(), max_norm))
      self.disc_optimizer.step()
      self.disc_lr_scheduler.step()
      self.disc_optimizer.zero_grad(set_to_none=True)
    self.ema.step(self.model.parameters())
    self.global_step += 1
    return logs


# -- the zoo's Trainer with the same weights ---------------------------------------------------
class ZooStage2Step:
  """The compiled train step of a zoo Trainer holding the official side's seeded weights."""

  def __init__(self, official: OfficialStage2Step, batch: int, tmp: pathlib.Path):
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from safetensors.numpy import save_file

    from zoo import registry
    from zoo.configs.titok import get_config
    from zoo.convert import nlayer_discriminator
    from zoo.train import sharding
    from zoo.train.discriminator import init_discriminator
    from zoo.train.trainer import Trainer
    from zoo.train.train_state import create_model

    convnext_file = tmp / "convnext_small_seeded.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in official.convnext_state.items()},
              str(convnext_file))
    config = get_config(ZOO_CONFIG)
    config.batch_size = config.eval_batch_size = config.num_eval_images = batch
    config.gan.discriminator_start = 0  # the GAN program from the first step on
    config.pixel_decoder_from_teacher = False  # its weights come from the seeded state below
    config.init_from = ""
    config.perceptual_checkpoints.convnext = str(convnext_file)
    config.mesh.update(data=1, fsdp=1, model=1)
    self.config = config
    # The workdir only receives config.json: the step is called directly (no checkpoints, no
    # metrics, no evaluation).
    self.trainer = trainer = Trainer(config, tmp / "workdir")

    model = nnx.eval_shape(lambda: create_model(config))
    registry.get(config.model).load_state_dict(model, official.titok_state,
                                               model_name=config.model)
    params = jax.device_put(nnx.state(model, nnx.Param), trainer.state_sharding["params"])
    disc = nnx.merge(init_discriminator(config)[0], trainer.state["disc_params"])
    nlayer_discriminator.load_state_dict(disc, official.disc_state)
    disc_params = jax.device_put(nnx.state(disc, nnx.Param),
                                 trainer.state_sharding["disc_params"])
    # As Trainer._warm_start does with a stage-1 run: the weights, and the EMA starting at them.
    trainer.state.update(params=params, ema=jax.tree.map(jnp.copy, params),
                         disc_params=disc_params)
    self.state = trainer.state
    self.step = 0
    self.batch_sharding = sharding.batch_sharding(trainer.mesh)

  def put(self, images_nhwc: np.ndarray):
    import jax
    return jax.block_until_ready(jax.device_put(images_nhwc, self.batch_sharding))

  def __call__(self, images) -> dict:
    """One step (the trainer loop's call); returns the metrics as floats."""
    import jax
    fn = self.trainer.train_step_fn(self.step)
    self.state, metrics = jax.block_until_ready(fn(self.state, images, self.trainer.net_params))
    self.step += 1
    return metrics

  @staticmethod
  def floats(metrics) -> dict:
    import jax
    return {k: float(v) for k, v in jax.device_get(metrics).items()}


# -- main ----------------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
  """Resets the kernel's peak-RSS counter of this process (Linux >= 4.0); False if it can't."""
  try:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
    return True
  except OSError:
    return False


def rss_gib(field: str = "VmHWM"):
  """VmHWM (peak) or VmRSS (current) of this process in GiB (None off Linux)."""
  try:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 2 ** 20
  except OSError:
    pass
  return None


def compare_losses(zoo: dict, official: dict) -> list[dict]:
  rows = []
  for label, zk, ok, scale in LOSSES:
    if zk not in zoo or ok not in official:
      continue
    z, o = zoo[zk], official[ok] * scale
    rows.append({"quantity": label, "zoo_key": zk, "official_key": ok, "zoo": z, "official": o,
                 "abs_diff": abs(z - o), "rel_diff": abs(z - o) / max(abs(o), 1e-12)})
  return rows


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", type=pathlib.Path, required=True,
                 help="checkout of github.com/bytedance/1d-tokenizer")
  p.add_argument("--batch", type=int, default=4,
                 help="images per step (8 needs ~20 GiB for the zoo side, see the docstring)")
  p.add_argument("--reps", type=int, default=3, help="timed steps per implementation")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
  p.add_argument("--out", type=pathlib.Path,
                 default=ROOT / "benchmarks" / "results" / "train_step_cpu.jsonl")
  args = p.parse_args()
  if args.reps < 1 or args.batch < 1:
    p.error("--reps and --batch must be positive")

  warnings.filterwarnings("ignore", category=FutureWarning)  # torch.cuda.amp.autocast in official
  import jax
  import torch
  torch.set_num_threads(args.threads)
  torch.manual_seed(SEED)
  compile_timer = titok_throughput.CompileTimer()
  log = JsonLinesLog(args.out)

  start = time.perf_counter()
  meta = titok_throughput.meta_record(
      argparse.Namespace(batch_sizes=[args.batch], reps=args.reps), torch.get_num_threads())
  print(f"{ZOO_CONFIG} training step on {meta['cpu']}\njax {meta['jax']} / flax {meta['flax']} "
        f"/ torch {meta['torch']} ({meta['torch_threads']} torch threads); load average "
        f"{meta['loadavg_start'][0]:.2f}", flush=True)

  tmp_dir = tempfile.TemporaryDirectory(prefix="train_step_bench_")
  tmp = pathlib.Path(tmp_dir.name)
  t0 = time.perf_counter()
  official = OfficialStage2Step(args.official_repo.resolve(), args.batch)
  ours = ZooStage2Step(official, args.batch, tmp)
  meta.update(model=ZOO_CONFIG, batch=args.batch,
              torchvision=importlib.metadata.version("torchvision"),
              optax=importlib.metadata.version("optax"),
              official_trained_params=official.n_trained)
  print(f"built both sides with the same seeded weights: TiTok {len(official.titok_state)}, "
        f"ConvNeXt-S {len(official.convnext_state)}, discriminator {len(official.disc_state)} "
        f"tensors ({time.perf_counter() - t0:.1f} s)", flush=True)

  x_np = titok_throughput.make_images(args.batch)
  xj = ours.put(x_np)
  xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()

  # Warm-up = first step on identical weights: the loss check, and the zoo's compile.
  # Peak RSS of the process during each side's first step, and its RSS just before: the
  # other side's weights and optimizer state (and whatever its allocator kept) stay resident.
  peak, before = {}, {}
  compile_before = compile_timer.total()
  can_reset = reset_peak_rss()
  before["zoo"] = rss_gib("VmRSS")
  w0, _ = titok_throughput.clock()
  zoo_first_metrics = ZooStage2Step.floats(ours(xj))
  w1, _ = titok_throughput.clock()
  peak["zoo"] = rss_gib()
  zoo_compile = compile_timer.total() - compile_before
  can_reset = reset_peak_rss() and can_reset
  before["official"] = rss_gib("VmRSS")
  official_first_metrics = official(xt)
  w2, _ = titok_throughput.clock()
  peak["official"] = rss_gib() if can_reset else None
  zoo_first, official_first = w1 - w0, w2 - w1
  agreement = compare_losses(zoo_first_metrics, official_first_metrics)
  max_rel = max(r["rel_diff"] for r in agreement)
  log({"kind": "loss_agreement", "batch": args.batch, "step": 0, "rows": agreement,
       "max_rel_diff": max_rel, "zoo_metrics": zoo_first_metrics,
       "official_logs": official_first_metrics})
  print(f"first step (same weights, same batch): zoo {zoo_first:.1f} s (JAX trace+compile "
        f"{zoo_compile:.1f} s), official {official_first:.1f} s", flush=True)
  print("| quantity | zoo | official | rel. diff |\n|---|---:|---:|---:|")
  for r in agreement:
    print(f"| {r['quantity']} | {r['zoo']:.6g} | {r['official']:.6g} | {r['rel_diff']:.1e} |")
  if not all(np.isfinite(r["zoo"]) and np.isfinite(r["official"]) for r in agreement):
    raise SystemExit("non-finite losses; not timing")

  times = {"zoo": collections.defaultdict(list), "official": collections.defaultdict(list)}
  for r in range(args.reps):
    order = ("zoo", "official") if r % 2 == 0 else ("official", "zoo")
    for impl in order:
      w0, c0 = titok_throughput.clock()
      if impl == "zoo":
        ours(xj)
      else:
        official(xt)
      w1, c1 = titok_throughput.clock()
      times[impl]["wall_s"].append(w1 - w0)
      times[impl]["process_cpu_s"].append(c1 - c0)
      print(f"  rep {r + 1}/{args.reps} {impl:8s} {w1 - w0:6.2f} s/step  "
            f"({c1 - c0:6.2f} CPU-s)", flush=True)

  med = {}
  for impl, t in times.items():
    med[impl] = (statistics.median(t["wall_s"]), statistics.median(t["process_cpu_s"]))
    log({"kind": "train_step", "impl": impl, "batch": args.batch, "reps": args.reps, **t,
         "median_wall_s": med[impl][0], "median_process_cpu_s": med[impl][1],
         "first_call_s": zoo_first if impl == "zoo" else official_first,
         "jax_compile_s": zoo_compile if impl == "zoo" else None,
         "process_rss_gib_before_first_step": before[impl],
         "process_peak_rss_gib_first_step": peak[impl]})
  summary = {"kind": "summary", "batch": args.batch, "reps": args.reps,
             "zoo_s_per_step": med["zoo"][0], "official_s_per_step": med["official"][0],
             "ratio_official_over_zoo": med["official"][0] / med["zoo"][0],
             "zoo_cpu_s_per_step": med["zoo"][1], "official_cpu_s_per_step": med["official"][1],
             "zoo_jax_compile_s": zoo_compile, "zoo_first_step_s": zoo_first,
             "official_first_step_s": official_first, "loss_max_rel_diff": max_rel,
             "zoo_peak_rss_gib": peak["zoo"], "official_peak_rss_gib": peak["official"],
             "zoo_rss_before_gib": before["zoo"], "official_rss_before_gib": before["official"]}
  log(summary)
  meta["loadavg_end"] = os.getloadavg()
  meta["wall_s"] = time.perf_counter() - start
  log(meta)
  log.close()
  tmp_dir.cleanup()

  print(f"\n{ZOO_CONFIG} training step (GAN active), batch {args.batch}, "
        f"{titok_throughput.IMAGE_SIZE}px, float32, median of {args.reps} steps")
  gib = lambda v: "-" if v is None else f"{v:.1f}"
  print("| impl | s/step | CPU-s/step | first step s | JAX compile s | RSS before -> peak GiB |"
        "\n|---|---:|---:|---:|---:|---:|")
  print(f"| zoo | {med['zoo'][0]:.2f} | {med['zoo'][1]:.2f} | {zoo_first:.1f} | "
        f"{zoo_compile:.1f} | {gib(before['zoo'])} -> {gib(peak['zoo'])} |")
  print(f"| official | {med['official'][0]:.2f} | {med['official'][1]:.2f} | "
        f"{official_first:.1f} | - | {gib(before['official'])} -> {gib(peak['official'])} |")
  print(f"official / zoo time per step: {summary['ratio_official_over_zoo']:.2f}; largest "
        f"relative loss difference at step 0: {max_rel:.1e}")
  print(f"\nwall {meta['wall_s']:.0f} s; load average {meta['loadavg_start'][0]:.2f} -> "
        f"{meta['loadavg_end'][0]:.2f}; results in {args.out}")


if __name__ == "__main__":
  main()
