"""Golden outputs of FlexTok's VAE (flextok/vae_wrapper.py over diffusers' AutoencoderKL).

The official wrapper is imported from a local checkout (never copied): its `encode` /
`decode` decide the semantics (posterior mode or sample, scaling factor, no clamping); a small
AutoencoderKL in the official key layout replaces the 84M-parameter one it builds, with
weights from `zoo/convert/seeded.py`, so tests/test_kl_vae.py rebuilds exactly these weights
with numpy from the saved {key: shape} table. flextok/utils/misc.py imports torchvision for
helpers the wrapper does not use; an empty stand-in module satisfies that import.

Run it in a venv with torch and diffusers (no jax needed):

  python3.11 -m venv /tmp/vaevenv
  /tmp/vaevenv/bin/pip install torch==2.13.0 diffusers safetensors numpy einops
  git clone https://github.com/apple/ml-flextok /tmp/official/ml-flextok
  /tmp/vaevenv/bin/python tests/golden/make_kl_vae_golden.py \
      --official_repo /tmp/official/ml-flextok

Writes, next to this file:
  kl_vae.npz                 images [2,32,48,3] in [0,1]; the wrapper's latents (mode x scale),
                             posterior mean / clamped logvar, the posterior's KL [B], the KL
                             the wrapper reports (`kl_wrapper`, see below), its decode of those
                             latents (`decoded_raw`, [-1, 1] domain, not clamped); all NHWC
  kl_vae_golden_shapes.json  {key: shape} of the small AutoencoderKL used for kl_vae.npz
  kl_vae_official_shapes.json  {flextok_vae_c4|c8|c16: {key: shape}} of FlexTok's VAE_BASE_CFG
                             AutoencoderKL (the `vae.vae.` part of a FlexTok checkpoint)
"""
import argparse
import importlib
import json
import pathlib
import sys
import types

import numpy as np

from golden_common import load_seeded_module, shape_table

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
# A 4-level (f8) AutoencoderKL, narrow enough for CPU tests; everything else as VAE_BASE_CFG.
GOLDEN_CONFIG = dict(block_out_channels=[16, 32, 32, 32], layers_per_block=2, norm_num_groups=8,
                     latent_channels=4, sample_size=32)
GOLDEN_SCALING = 0.3  # any value but 1 shows whether the scale is applied where FlexTok does
IMAGE_HW = (32, 48)  # not square: a swapped H/W axis changes the outputs


def import_vae_wrapper(repo: pathlib.Path):
  """flextok.vae_wrapper without flextok/utils/__init__ (demo, checkpoint: hydra, PIL, ...)."""
  sys.path.insert(0, str(repo))
  for name, path in (("flextok", "flextok"), ("flextok.utils", "flextok/utils")):
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(repo / path)]
    sys.modules[name] = pkg
  for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
    sys.modules.setdefault(name, types.ModuleType(name))
  return importlib.import_module("flextok.vae_wrapper")


def golden_images(h, w) -> np.ndarray:
  """Smooth colour ramps plus noise, with exact 0 and 1 pixels: float32 [2, h, w, 3]."""
  rng = np.random.default_rng(SEED)
  yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
  base = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], axis=-1)
  imgs = np.stack([base, base[::-1, ::-1]]) + 0.15 * rng.standard_normal((2, h, w, 3))
  imgs = np.clip(imgs, 0.0, 1.0)
  imgs[0, 0, 0] = 0.0
  imgs[1, -1, -1] = 1.0
  return imgs.astype(np.float32)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  import torch
  from diffusers.models import AutoencoderKL
  vae_wrapper = import_vae_wrapper(args.official_repo.resolve())
  seeded = load_seeded_module()
  torch.manual_seed(0)  # only the official inits use it; all weights are overwritten

  # Released layout: FlexTok's own VAE_BASE_CFG at 4/8/16 latent channels, on the meta device.
  official = {}
  with torch.device("meta"):
    for c in (4, 8, 16):
      wrapper = vae_wrapper.StableDiffusionVAE(
          images_read_key="images", vae_latents_read_key="latents",
          vae_latents_write_key="latents", images_reconst_write_key="recon",
          vae_kl_loss_write_key="kl", latent_channels=c, scaling_factor=1.0)
      table = shape_table(wrapper)
      assert all(k.startswith("vae.") for k in table), "wrapper holds more than the VAE"
      official[f"flextok_vae_c{c}"] = {k[len("vae."):]: v for k, v in table.items()}

  wrapper = vae_wrapper.StableDiffusionVAE(
      images_read_key="images", vae_latents_read_key="latents", vae_latents_write_key="latents",
      images_reconst_write_key="recon", vae_kl_loss_write_key="kl", latent_channels=4,
      scaling_factor=GOLDEN_SCALING, sample_posterior=False)
  cfg = dict(vae_wrapper.VAE_BASE_CFG, **GOLDEN_CONFIG)
  wrapper.vae = AutoencoderKL.from_config(cfg)  # the small stand-in, same wrapper logic
  shapes = shape_table(wrapper.vae)
  arrays = seeded.seeded_state_dict({k: tuple(v) for k, v in shapes.items()}, SEED)
  wrapper.vae.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
  wrapper.eval()

  x = golden_images(*IMAGE_HW)
  x_t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0  # FlexTok: [-1, 1]
  nhwc = lambda t: t.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
  with torch.no_grad():
    out = wrapper.encode({"images": x_t})
    posterior = wrapper.vae.encode(x_t).latent_dist
    latents = out["latents"]
    recon = wrapper.decode({"latents": latents})["recon"]
  golden = {"images": x, "latents": nhwc(latents), "mean": nhwc(posterior.mean),
            "logvar": nhwc(posterior.logvar), "kl": posterior.kl().numpy().astype(np.float32),
            # The wrapper scales the mode in place (`latents *= scaling_factor` on the tensor
            # `mode()` returns), so its KL uses mean x scale when sample_posterior=False.
            "kl_wrapper": out["kl"].numpy().astype(np.float32),
            "decoded_raw": nhwc(recon), "scaling_factor": np.float32(GOLDEN_SCALING)}
  for k, v in golden.items():
    if not np.all(np.isfinite(v)):
      raise ValueError(f"non-finite values in {k}")
  np.savez_compressed(args.out_dir / "kl_vae.npz", **golden)
  (args.out_dir / "kl_vae_golden_shapes.json").write_text(json.dumps(shapes, indent=1) + "\n")
  (args.out_dir / "kl_vae_official_shapes.json").write_text(json.dumps(official, indent=1) + "\n")
  print(", ".join(f"{k}{list(np.shape(v))}" for k, v in golden.items()))
  print(f"latents std {golden['latents'].std():.4f}; decoded_raw min "
        f"{golden['decoded_raw'].min():.3f} max {golden['decoded_raw'].max():.3f}")
  for name, table in official.items():
    print(f"{name}: {len(table)} tensors, {sum(int(np.prod(s)) for s in table.values())} values")


if __name__ == "__main__":
  main()
