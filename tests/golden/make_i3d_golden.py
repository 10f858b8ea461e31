"""Golden outputs of the FVD I3D (VideoGPT / OmniTokenizer `fvd/pytorch_i3d.py`) and of the
official FVD computations, on seeded weights.

The official `OmniTokenizer/fvd/pytorch_i3d.py` and `fvd.py` are imported from a local checkout
of FoundationVision/OmniTokenizer (never copied); `pytorch_i3d.py` imports an LPIPS helper of
the package that the I3D itself never calls, so a one-function module stands in for it, and
`fvd.py` imports sklearn (for its KVD) at module level, which gets an empty stand-in.
Weights: `zoo/convert/seeded.py` `batchnorm_state_dict` in the official key layout.
Clips: two sets of 6 clips, 10 frames of 32x32 (uint8), windows panning over scikit-image
photos; the second set shifted by a few pixels, darker and with a colour cast. The official
`preprocess` resizes them to 224x224.

  /tmp/venv/bin/python tests/golden/make_i3d_golden.py --official_repo /tmp/omni_official

Writes next to this file:
  i3d.npz                 the clips, the official I3D features of both sets, the Fréchet
                          distance of the two feature sets by OmniTokenizer's fvd.py (TF-GAN's
                          SVD square root, torch float32) and by StyleGAN-V's (scipy sqrtm,
                          float64)
  i3d_golden_shapes.json  {key: shape} of the official state dict
"""
import argparse
import json
import pathlib
import sys
import types

import numpy as np

from golden_common import load_module, load_seeded_module, photos

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
CLIPS, FRAMES, SIZE = 6, 10, 32


def clip_sets() -> tuple[np.ndarray, np.ndarray]:
  pics = (photos(96) * 255).round().astype(np.uint8)
  def window(p, dy, dx, t):
    return p[dy + 2 * t:dy + 2 * t + SIZE, dx + 3 * t:dx + 3 * t + SIZE]
  real = np.stack([np.stack([window(pics[i % 2], 4 * (i // 2), 6 * (i // 2), t)
                             for t in range(FRAMES)]) for i in range(CLIPS)])
  # The "reconstructions": shifted windows, darker and with a colour cast.
  fake = np.stack([np.stack([window(pics[i % 2], 4 * (i // 2) + 5, 6 * (i // 2) + 3, t)
                             for t in range(FRAMES)]) for i in range(CLIPS)])
  fake = np.clip(fake * np.array([0.6, 0.8, 1.0]) + 20, 0, 255).round().astype(np.uint8)
  return real, fake


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  import torch
  pkg = types.ModuleType("OmniTokenizer")
  pkg.__path__ = [str(args.official_repo / "OmniTokenizer")]
  lpips_stub = types.ModuleType("OmniTokenizer.modules.lpips")
  lpips_stub.normalize_tensor = lambda x, eps=1e-10: x / (x.norm(dim=1, keepdim=True) + eps)
  sklearn = types.ModuleType("sklearn.metrics.pairwise")
  sklearn.polynomial_kernel = None  # KVD only
  sys.modules.update({"OmniTokenizer": pkg, "OmniTokenizer.modules": types.ModuleType("m"),
                      "OmniTokenizer.modules.lpips": lpips_stub,
                      "sklearn": types.ModuleType("sklearn"),
                      "sklearn.metrics": types.ModuleType("sklearn.metrics"),
                      "sklearn.metrics.pairwise": sklearn})
  fvd_dir = args.official_repo / "OmniTokenizer" / "fvd"
  i3d_mod = load_module("OmniTokenizer.fvd.pytorch_i3d", fvd_dir / "pytorch_i3d.py")
  sys.modules["OmniTokenizer.fvd.pytorch_i3d"] = i3d_mod
  fvd_mod = load_module("OmniTokenizer.fvd.fvd", fvd_dir / "fvd.py")

  model = i3d_mod.InceptionI3d(400, in_channels=3)
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
  seeded = load_seeded_module()
  weights = seeded.batchnorm_state_dict(shapes, SEED)
  model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
  model.eval()
  real, fake = clip_sets()
  with torch.no_grad():
    feats = [fvd_mod.get_logits(model, fvd_mod.preprocess(c, (224, 224)), "cpu").numpy()
             for c in (real, fake)]
    fvd_tfgan = float(fvd_mod.frechet_distance(torch.from_numpy(feats[0]),
                                               torch.from_numpy(feats[1])))
  from scipy import linalg
  mu = [f.astype(np.float64).mean(0) for f in feats]
  sig = [np.cov(f.astype(np.float64), rowvar=False) for f in feats]
  covmean = linalg.sqrtm(sig[1].dot(sig[0]))
  fvd_scipy = float(np.real(np.square(mu[1] - mu[0]).sum()
                            + np.trace(sig[1] + sig[0] - covmean * 2)))
  np.savez_compressed(HERE / "i3d.npz", real=real, fake=fake, real_features=feats[0],
                      fake_features=feats[1], fvd_tfgan=fvd_tfgan, fvd_scipy=fvd_scipy)
  (HERE / "i3d_golden_shapes.json").write_text(json.dumps(shapes, indent=0) + "\n")
  print(feats[0].shape, feats[0][:2, :4], fvd_tfgan, fvd_scipy)


if __name__ == "__main__":
  main()
