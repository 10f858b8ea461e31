"""Golden outputs of the official TiTok stage-2 discriminator and GAN losses on seeded weights.

The official code (github.com/bytedance/1d-tokenizer) is imported from a local checkout; it is never
copied here. Parameters come from `zoo/convert/seeded.py`, except that GroupNorm scales get +1
(their official keys, `blocks.{i}.2.weight`, do not say "norm", so seeded.py would make them
~0.02); the blur kernels are the official fixed buffers. Run it with the reference venv (see
make_titok_golden.py):

  /tmp/refvenv/bin/python tests/golden/make_discriminator_golden.py \
      --official_repo /tmp/official/1d-tokenizer

Writes, next to this file:
  nlayer_discriminator.npz             per case `<case>_images` NHWC and `<case>_logits` NHWC
                                       [B, 16, 16, 1]; `loss_*` arrays for the loss checks
  discriminator_golden_shapes.json     {case: {config, state_dict {key: shape}, buffers [keys]}}
The losses come from the official `ReconstructionLoss_Stage2` with its discriminator swapped
for nn.Identity, so that fixed logits can be fed in place of images.
"""
import argparse
import importlib
import json
import pathlib
import sys
import types

import numpy as np
import torch
import torch.nn as nn

from golden_common import load_seeded_module, photos, prepare_official_imports

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 0
# case -> (NLayerDiscriminator kwargs, input size, batch). "default" is the official default.
CASES = {
    "default": ({}, 64, 2),
    "default_odd": ({}, 50, 1),  # odd blur padding (25 -> 13 -> 7), adaptive pool 7 -> 16
    "small_k5": (dict(hidden_channels=32, num_stages=2, blur_kernel_size=5), 40, 1),
    "small_avg": (dict(hidden_channels=32, num_stages=2, blur_resample=False), 37, 1),
}
LOSS_CONFIG = dict(discriminator_start=2, discriminator_factor=1.0, discriminator_weight=0.01,
                   lecam_regularization_weight=0.001, lecam_ema_decay=0.999,
                   reconstruction_loss="l2", reconstruction_weight=1.0, quantizer_weight=0.0,
                   perceptual_loss="stub", perceptual_weight=0.1)
LOSS_STEPS = 4
LECAM_PRESET = (0.3, -0.2)  # (ema_real, ema_fake) for the stand-alone LeCam check


def import_official(repo: pathlib.Path):
  """modeling.modules.losses without modeling/modules/__init__.py and the perceptual net.

  A bare package stands in for modeling.modules; PerceptualLoss (torchvision, LPIPS) is replaced
  by a stub that returns 0, which the GAN terms do not depend on.
  """
  prepare_official_imports(repo)

  class PerceptualStub(nn.Module):
    def __init__(self, *args):
      super().__init__()

    def forward(self, a, b):
      return torch.zeros((), device=a.device)

  stub = types.ModuleType("modeling.modules.perceptual_loss")
  stub.PerceptualLoss = PerceptualStub
  sys.modules["modeling.modules.perceptual_loss"] = stub
  return importlib.import_module("modeling.modules.losses")


def is_group_norm_scale(key: str) -> bool:
  parts = key.split(".")
  return len(parts) == 4 and parts[0] == "blocks" and parts[2] == "2" and parts[3] == "weight"


def seed_weights(model, seeded):
  shapes = {k: tuple(p.shape) for k, p in model.named_parameters()}
  arrays = seeded.seeded_state_dict(shapes, SEED)
  arrays = {k: v + 1.0 if is_group_norm_scale(k) else v for k, v in arrays.items()}
  missing, unexpected = model.load_state_dict(
      {k: torch.from_numpy(v) for k, v in arrays.items()}, strict=False)
  assert not unexpected and all(k.endswith(".kernel") for k in missing), (missing, unexpected)
  return model.eval()


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t):
  return t.detach().permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def loss_goldens(losses):
  """Official loss values on fixed logits: a 4-step sequence and a preset-EMA LeCam check."""
  from omegaconf import OmegaConf
  rng = np.random.default_rng(SEED)
  real = (1.5 * rng.standard_normal((LOSS_STEPS, 2, 1, 16, 16)) + 0.5).astype(np.float32)
  fake = (1.5 * rng.standard_normal((LOSS_STEPS, 2, 1, 16, 16)) - 0.5).astype(np.float32)
  conf = OmegaConf.create({"losses": LOSS_CONFIG})
  module = losses.ReconstructionLoss_Stage2(conf)
  module.discriminator = nn.Identity()  # the "images" below are already logits
  extra = {k: torch.zeros(()) for k in ("quantizer_loss", "commitment_loss", "codebook_loss")}
  seq = {k: [] for k in ("d_loss", "lecam", "ema_real", "ema_fake", "g_weighted", "g_gan")}
  for step in range(LOSS_STEPS):
    r, f = torch.from_numpy(real[step]), torch.from_numpy(fake[step])
    _, g = module(r, f, extra, step, mode="generator")
    d, dd = module(r, f, extra, step, mode="discriminator")
    seq["d_loss"].append(float(d.detach()))
    seq["lecam"].append(float(dd["lecam_loss"]))
    seq["ema_real"].append(float(module.ema_real_logits_mean))
    seq["ema_fake"].append(float(module.ema_fake_logits_mean))
    seq["g_weighted"].append(float(g["weighted_gan_loss"]))
    seq["g_gan"].append(float(g["gan_loss"]))
  out = {f"loss_seq_{k}": np.asarray(v, np.float32) for k, v in seq.items()}

  r, f = torch.from_numpy(real[0]), torch.from_numpy(fake[0])
  out["loss_hinge"] = np.float32(losses.hinge_d_loss(r, f))
  out["loss_generator"] = np.float32(-torch.mean(f))
  ema = [torch.tensor([v]) for v in LECAM_PRESET]
  out["loss_lecam_preset"] = np.float32(
      losses.compute_lecam_loss(torch.mean(r), torch.mean(f), *ema))
  preset = losses.ReconstructionLoss_Stage2(conf)
  preset.discriminator = nn.Identity()
  preset.ema_real_logits_mean, preset.ema_fake_logits_mean = ema
  preset(r, f, extra, LOSS_CONFIG["discriminator_start"], mode="discriminator")
  out["loss_lecam_preset_new_ema"] = np.asarray(
      [float(preset.ema_real_logits_mean), float(preset.ema_fake_logits_mean)], np.float32)
  out["loss_real_logits"] = real.transpose(0, 1, 3, 4, 2)  # NHWC per step
  out["loss_fake_logits"] = fake.transpose(0, 1, 3, 4, 2)
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  losses = import_official(args.official_repo.resolve())
  seeded = load_seeded_module()
  torch.manual_seed(0)  # only the official inits use it; all parameters are overwritten

  out, tables = {}, {}
  with torch.no_grad():
    for case, (kwargs, size, batch) in CASES.items():
      model = seed_weights(losses.NLayerDiscriminator(**kwargs), seeded)
      images = photos(size)[:batch]
      if case == "default":  # plus "reconstructions": the images with noise, not clamped
        noise = np.random.default_rng(SEED + 1).standard_normal(images.shape)
        images = np.concatenate([images, images + 0.1 * noise.astype(np.float32)])
      logits = nhwc(model(nchw(images)))
      if not np.all(np.isfinite(logits)):
        raise ValueError(f"{case}: non-finite logits")
      out[f"{case}_images"], out[f"{case}_logits"] = images, logits
      tables[case] = {
          "config": kwargs,
          "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
          "buffers": sorted(k for k, _ in model.named_buffers()),
      }
      print(f"{case}: images {list(images.shape)} -> logits {list(logits.shape)}, "
            f"mean {logits.mean():.4f} std {logits.std():.4f}")
  out.update(loss_goldens(losses))
  for k in sorted(k for k in out if k.startswith("loss_seq")):
    print(k, out[k])
  np.savez_compressed(args.out_dir / "nlayer_discriminator.npz", **out)
  (args.out_dir / "discriminator_golden_shapes.json").write_text(
      json.dumps(tables, indent=1) + "\n")


if __name__ == "__main__":
  main()
