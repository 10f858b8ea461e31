"""Golden outputs of 3DShape2VecSet's autoencoders (1zb/3DShape2VecSet) on seeded weights.

models_ae.py is imported from a local checkout (never copied) through shape2vecset_official.py
(stand-ins for torch_cluster's fps, starting at index 0, and timm's DropPath). Two small models
in the official key layout, filled from `zoo/convert/seeded.py`:
  * KLAutoEncoder: 256 surface points, 32 latents of 8 channels, width 64, 2 latent blocks of
    4 heads x 16;
  * AutoEncoder with the decoder feed-forward, otherwise the same.
Inputs: two shapes sampled with a fixed seed (a torus and the surface of a box, inside
[-1, 1]^3) and 300 query points, uniform in the cube and near each surface.

  /tmp/venv/bin/pip install einops
  git clone https://github.com/1zb/3DShape2VecSet /tmp/shape2vecset_official
  /tmp/venv/bin/python tests/golden/make_shape2vecset_golden.py \
      --official_repo /tmp/shape2vecset_official

Writes, next to this file:
  shape2vecset.npz          surface, queries, fps indices; KL: posterior mean and logvar, the
                            per-shape KL, logits decoded from the mean; AE: latents, logits
  shape2vecset_shapes.json  {kl|ae: {key: shape}} of both state dicts, and of two released
                            architectures (kl_d512_m512_l8, ae_d512_m256, built on the meta
                            device)
"""
import argparse
import json
import pathlib

import numpy as np

from golden_common import load_seeded_module, shape_table
from shape2vecset_official import import_official

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
SMALL = dict(depth=2, dim=64, queries_dim=64, output_dim=1, num_inputs=256, num_latents=32,
             heads=4, dim_head=16)


def shapes(num_surface: int = 256, num_queries: int = 300) -> tuple[np.ndarray, np.ndarray]:
  """Surface points [2, 256, 3] (a torus, a box) and queries [2, 300, 3], all in [-1, 1]^3."""
  rng = np.random.default_rng(SEED)
  u, v = rng.uniform(0, 2 * np.pi, (2, num_surface))
  torus = np.stack([(0.6 + 0.25 * np.cos(v)) * np.cos(u), (0.6 + 0.25 * np.cos(v)) * np.sin(u),
                    0.25 * np.sin(v)], -1)
  box = rng.uniform(-1, 1, (num_surface, 3)) * np.array([0.7, 0.5, 0.3])
  face = rng.integers(0, 3, num_surface)
  box[np.arange(num_surface), face] = np.sign(rng.standard_normal(num_surface)) * np.array(
      [0.7, 0.5, 0.3])[face]
  surface = np.stack([torus, box])
  uniform = rng.uniform(-1, 1, (2, num_queries // 2, 3))
  near = surface[:, :num_queries - num_queries // 2] + 0.02 * rng.standard_normal(
      (2, num_queries - num_queries // 2, 3))
  queries = np.clip(np.concatenate([uniform, near], 1), -1, 1)
  return surface.astype(np.float32), queries.astype(np.float32)


def seeded_model(torch, cls, kwargs, seeded):
  model = cls(**kwargs)
  table = {k: list(v.shape) for k, v in model.state_dict().items()}
  weights = seeded.seeded_state_dict({k: s for k, s in table.items()
                                      if k != "point_embed.basis"}, SEED)
  missing, unexpected = model.load_state_dict(
      {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
  assert missing == ["point_embed.basis"] and not unexpected, (missing, unexpected)
  return model.eval(), table


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  import torch
  torch.manual_seed(SEED)
  official = import_official(args.official_repo)
  seeded = load_seeded_module()
  surface, queries = shapes()
  pc, q = torch.from_numpy(surface), torch.from_numpy(queries)
  out = {"surface": surface, "queries": queries}
  tables = {}

  kl, kl_table = seeded_model(torch, official.KLAutoEncoder, dict(SMALL, latent_dim=8), seeded)
  seen = {}
  kl.mean_fc.register_forward_hook(lambda m, i, o: seen.__setitem__("mean", o))
  kl.logvar_fc.register_forward_hook(lambda m, i, o: seen.__setitem__("logvar", o))
  with torch.no_grad():
    kl_value, _ = kl.encode(pc)  # samples; the hooks keep the posterior's parameters
    out["kl_mean"], out["kl_logvar"] = seen["mean"].numpy(), seen["logvar"].numpy()
    out["kl_kl"] = kl_value.numpy()
    out["basis"] = kl.point_embed.basis.numpy()
    out["kl_logits"] = kl.decode(seen["mean"], q).squeeze(-1).numpy()
    batch = torch.repeat_interleave(torch.arange(2), surface.shape[1])
    idx = official.fps(pc.view(-1, 3), batch, ratio=SMALL["num_latents"] / SMALL["num_inputs"])
    out["fps_indices"] = (idx.view(2, -1) - torch.arange(2)[:, None] * surface.shape[1]).numpy(
        ).astype(np.int32)

  ae, ae_table = seeded_model(torch, official.AutoEncoder, dict(SMALL, decoder_ff=True), seeded)
  with torch.no_grad():
    latents = ae.encode(pc)
    out["ae_latents"] = latents.numpy()
    out["ae_logits"] = ae.decode(latents, q).squeeze(-1).numpy()

  with torch.device("meta"):
    for name in ("kl_d512_m512_l8", "ae_d512_m256"):
      tables[name] = shape_table(getattr(official, name)())

  np.savez_compressed(HERE / "shape2vecset.npz", **out)
  (HERE / "shape2vecset_shapes.json").write_text(
      json.dumps({"kl": kl_table, "ae": ae_table, **tables}, indent=0) + "\n")
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main()
