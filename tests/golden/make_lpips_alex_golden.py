"""Golden outputs of the `lpips` package's LPIPS(net="alex") on seeded weights.

The trunk is torchvision's `alexnet` built with weights=None and filled with the weights of
`zoo/convert/seeded.py` in the released key layout (tweaked by perception_seeding.tweak: He gain
on the convs, non-negative lin weights); the lin layers are read from a seeded file in the layout
of the released `alex.pth`. Nothing is downloaded and no official code is copied here.

  /tmp/percvenv/bin/python tests/golden/make_lpips_alex_golden.py
(the venv of make_perception_golden.py: torch, torchvision, lpips, scikit-image)

Writes, next to this file (images NHWC float32 in [0, 1]):
  lpips_alex.npz  for the 64x64 pair (scikit-image's astronaut and coffee, and a blurred,
                  brightened, noisy "reconstruction") and a 48x72 pair made the same way:
                  x0_64, x1_64, lpips_64 [2], layers_64 [2, 5]; x0_48x72, ... likewise;
                  key_{k}: the names of the trunk file (features.* and classifier.*) and the lin
                  file, with shape_{k} their shapes, so the test rebuilds the same weights.
"""
import argparse
import pathlib
import tempfile

import numpy as np
import torch

from golden_common import load_module, load_seeded_module, photos

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0


def reconstruction_like(x0):
  noise = np.random.default_rng(SEED).standard_normal(x0.shape).astype(np.float32)
  x1 = np.clip(0.7 * x0 + 0.3 * np.roll(x0, 3, axis=2) + 0.03 + 0.04 * noise, 0.0, 1.0)
  return x1.astype(np.float32)


def image_pairs():
  from skimage.transform import resize
  square = photos(64)
  wide = np.stack([resize(im, (48, 72), anti_aliasing=True) for im in photos(96)]).astype(
      np.float32)
  return {"64": square, "48x72": wide}


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  import lpips
  from torchvision import models
  torch.manual_seed(0)  # only the official inits use it; all weights are overwritten
  seeded = load_seeded_module()
  tweak = load_module("perception_seeding", HERE / "perception_seeding.py").tweak

  alexnet = models.alexnet(weights=None)
  trunk_shapes = {k: tuple(v.shape) for k, v in alexnet.state_dict().items()}
  reference = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False)
  lin_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()
                if k.startswith("lin") and not k.startswith("lins.")}
  trunk = tweak("alexnet", seeded.seeded_state_dict(trunk_shapes, SEED))
  alexnet.load_state_dict({k: torch.from_numpy(v) for k, v in trunk.items()})
  lin = tweak("lpips_lin", seeded.seeded_state_dict(lin_shapes, SEED))
  lin_file = pathlib.Path(tempfile.mkdtemp()) / "alex.pth"
  torch.save({k: torch.from_numpy(v) for k, v in lin.items()}, lin_file,
             _use_new_zipfile_serialization=False)  # the released alex.pth's format

  lpips.pretrained_networks.tv.alexnet = lambda *a, **k: alexnet
  model = lpips.LPIPS(net="alex", pnet_rand=True, model_path=str(lin_file), verbose=False).eval()

  out = {}
  for name, x0 in image_pairs().items():
    x1 = reconstruction_like(x0)
    with torch.no_grad():
      total, layers = model(nchw(x0), nchw(x1), retPerLayer=True, normalize=True)
    out.update({f"x0_{name}": x0, f"x1_{name}": x1, f"lpips_{name}": total.reshape(-1).numpy(),
                f"layers_{name}": torch.cat([r.reshape(-1, 1) for r in layers], 1).numpy()})
  shapes = {**trunk_shapes, **lin_shapes}
  for i, (k, s) in enumerate(sorted(shapes.items())):
    out[f"key_{i}"], out[f"shape_{i}"] = np.array(k), np.array(s, np.int64)
  for k, v in out.items():
    if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
      raise ValueError(f"non-finite values in {k}")
  np.savez_compressed(args.out_dir / "lpips_alex.npz", **out)
  print({k: np.round(v, 5).tolist() for k, v in out.items() if k.startswith("lpips_")})


if __name__ == "__main__":
  main()
