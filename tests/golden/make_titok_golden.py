"""Golden outputs of the official PyTorch TiTok and MaskGIT-VQGAN on seeded weights.

The official code (github.com/bytedance/1d-tokenizer) is imported from a local checkout; it is never
copied here. Weights come from `zoo/convert/seeded.py` (numpy only), so the JAX tests can rebuild
exactly the same weights from the saved {key: shape} tables and compare against these outputs.

Run it with a separate venv that has the official code's runtime deps (no jax needed):

  python3.11 -m venv /tmp/refvenv
  /tmp/refvenv/bin/pip install torch==2.13.0 numpy omegaconf einops huggingface_hub safetensors \
      accelerate scikit-image
  /tmp/refvenv/bin/python tests/golden/make_titok_golden.py --official_repo /tmp/official/1d-tokenizer

Writes, next to this file:
  <case>.npz                   images [2,64,64,3] in [0,1] plus the case's outputs (see CASES)
  titok_golden_shapes.json     {case: {key: shape}} of the models used for the .npz files (crop 64)
  titok_official_shapes.json   {released name: {key: shape}} of the official models at crop 256
All arrays are NHWC float32 / int32; `decoded` is the raw decoder output (not clamped).
"""
import argparse
import importlib
import json
import pathlib

import numpy as np
import torch
import torch.nn as nn

from golden_common import load_seeded_module, photos, prepare_official_imports

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 0
GOLDEN_CROP = 64

SMALL = dict(vit_enc_model_size="small", vit_dec_model_size="small",
             vit_enc_patch_size=16, vit_dec_patch_size=16)
# Golden cases: name -> (kind, vq_model overrides). Config files are read for the released ones.
CASES = {
    # Legacy TiTok-S-128 as released: VQ 4096x12 with l2 norm, two-stage (pixel) decoder.
    "titok_s128": ("titok", "titok_s128.yaml"),
    # Non-legacy VQ (like titok_sl256_vq8k) shrunk to small/small and 64 tokens.
    "titok_ss64_vq8k": ("titok", dict(SMALL, codebook_size=8192, token_size=64, use_l2_norm=False,
                                      commitment_cost=0.25, num_latent_tokens=64,
                                      finetune_decoder=False, is_legacy=False)),
    # Non-legacy VAE with 16 channels, small/small, 32 tokens.
    "titok_ss32_vae_c16": ("titok", dict(SMALL, quantize_mode="vae", token_size=16,
                                         num_latent_tokens=32, finetune_decoder=False,
                                         is_legacy=False)),
    "maskgit_vqgan_f16": ("vqgan", None),
}
RELEASED = ["titok_l32", "titok_b64", "titok_s128", "titok_bl64_vq8k", "titok_bl128_vq8k",
            "titok_sl256_vq8k", "titok_ll32_vae_c16", "titok_bl64_vae_c16", "titok_bl128_vae_c16"]
VQGAN_CONFIG = {"channel_mult": [1, 1, 2, 2, 4], "num_resolutions": 5, "dropout": 0.0,
                "hidden_channels": 128, "num_channels": 3, "num_res_blocks": 2,
                "resolution": 256, "z_channels": 256}


def import_official(repo: pathlib.Path):
  """Imports modeling.titok without running modeling/modules/__init__.py.

  That __init__ pulls in the training losses (torchvision, LPIPS, diffusion), which inference does
  not need; a bare package object stands in for it so only the needed submodules load.
  """
  prepare_official_imports(repo)
  return importlib.import_module("modeling.titok")


def titok_config(repo, spec, crop):
  from omegaconf import OmegaConf
  if isinstance(spec, str):
    conf = OmegaConf.load(repo / "configs/infer/TiTok" / spec)
  else:
    conf = OmegaConf.create({"model": {"vq_model": dict(spec)}})
  conf.dataset = {"preprocessing": {"crop_size": crop}}
  return conf


def build(official, repo, kind, spec, crop):
  """The official model; for the VQGAN, a module with PretrainedTokenizer's key layout."""
  if kind == "titok":
    return official.TiTok(titok_config(repo, spec, crop))
  from omegaconf import OmegaConf
  conf = OmegaConf.create(VQGAN_CONFIG)
  m = nn.Module()
  m.encoder = official.Pixel_Eecoder(conf)  # (sic) the official alias name
  m.decoder = official.Pixel_Decoder(conf)
  m.quantize = official.Pixel_Quantizer(num_embeddings=1024, embedding_dim=256,
                                        commitment_cost=0.25)
  return m


def shape_table(model):
  return {k: list(v.shape) for k, v in model.state_dict().items()}


def seed_weights(model, seeded):
  shapes = {k: tuple(v) for k, v in shape_table(model).items()}
  arrays = seeded.seeded_state_dict(shapes, SEED)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
  return model.eval()


def golden_images(size):
  return photos(size)  # [2, H, W, 3] in [0, 1]


def nhwc(t):
  return t.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


@torch.no_grad()
def run_case(official, model, kind, x_nhwc):
  x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()
  out = {"images": x_nhwc}
  if kind == "vqgan":
    _, ids, _ = model.quantize(model.encoder(x))  # ids [B, h*w], row-major
    out["ids"] = ids.numpy().astype(np.int32)
    out["decoded"] = nhwc(model.decoder(model.quantize.get_codebook_entry(ids)))
  elif model.quantize_mode == "vq":
    _, result = model.encode(x)
    ids = result["min_encoding_indices"]  # [B, 1, K]
    ids = ids.reshape(ids.shape[0], -1)
    out["ids"] = ids.numpy().astype(np.int32)
    out["decoded"] = nhwc(model.decode_tokens(ids))
  else:  # vae: use the posterior mode, not a sample
    z = model.encoder(pixel_values=x, latent_tokens=model.latent_tokens)  # [B, 2C, 1, K]
    posterior = official.DiagonalGaussianDistribution(z)
    mode = posterior.mode()  # [B, C, 1, K]
    out["tokens"] = mode[:, :, 0, :].permute(0, 2, 1).numpy().astype(np.float32)  # [B, K, C]
    out["decoded"] = nhwc(model.decode(mode))
    kl = posterior.kl()  # official: summed over channels only -> [B, K]
    out["kl"] = kl.numpy().astype(np.float32)
    out["kl_per_sample"] = kl.sum(1).numpy().astype(np.float32)
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  repo = args.official_repo.resolve()
  official = import_official(repo)
  seeded = load_seeded_module()
  torch.manual_seed(0)  # only the official inits use it; all weights are overwritten

  x = golden_images(GOLDEN_CROP)
  golden_shapes = {}
  for name, (kind, spec) in CASES.items():
    model = seed_weights(build(official, repo, kind, spec, GOLDEN_CROP), seeded)
    golden_shapes[name] = shape_table(model)
    out = run_case(official, model, kind, x)
    for k, v in out.items():
      if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: non-finite values in {k}")
    np.savez_compressed(args.out_dir / f"{name}.npz", **out)
    dec = out["decoded"]
    print(f"{name}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in out.items())
          + f"; decoded mean {dec.mean():.4f} std {dec.std():.4f} "
          f"min {dec.min():.3f} max {dec.max():.3f}")
  (args.out_dir / "titok_golden_shapes.json").write_text(json.dumps(golden_shapes, indent=1) + "\n")

  official_shapes = {}
  with torch.device("meta"):  # no memory for the L/L models
    for name in RELEASED:
      official_shapes[name] = shape_table(build(official, repo, "titok", f"{name}.yaml", 256))
    official_shapes["maskgit_vqgan_f16"] = shape_table(build(official, repo, "vqgan", None, 256))
  (args.out_dir / "titok_official_shapes.json").write_text(
      json.dumps(official_shapes, indent=1) + "\n")
  for name, table in official_shapes.items():
    n = sum(int(np.prod(s)) for s in table.values())
    print(f"{name}: {len(table)} tensors, {n / 1e6:.1f}M values")


if __name__ == "__main__":
  main()
