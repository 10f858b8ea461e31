"""Golden outputs of the official perceptual networks on seeded weights.

Runs, with the weights of `zoo/convert/seeded.py` in the released key layouts:
  - the `lpips` package (LPIPS v0.1, net="vgg"), and TiTok's own LPIPS class
    (modeling/modules/lpips.py), whose trunk is torchvision's `vgg16`;
  - torchvision's `convnext_small`;
  - TiTok's PerceptualLoss (modeling/modules/perceptual_loss.py) in its "lpips",
    "convnext_s" and "lpips-convnext_s-1.0-0.1" modes.
Nothing is downloaded: the torchvision constructors get weights=None and the lpips/TiTok weight
loaders are pointed at a seeded file. The official code is imported from a local checkout of
github.com/bytedance/1d-tokenizer and from the installed packages; none of it is copied here.

Seeded weights get three tweaks so that every layer matters to the outputs (see `tweak`):
VGG conv weights times sqrt(2) (He gain: otherwise relu5_3 is nearly constant), LPIPS lin
weights made non-negative (as the trained ones are), ConvNeXt LayerNorm scales 1 + 0.1 N (the
generic seeding makes them ~0.02, which leaves logits almost independent of the image).

  python3.11 -m venv /tmp/percvenv
  /tmp/percvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy scikit-image tqdm requests
  /tmp/percvenv/bin/pip install --no-deps lpips==0.1.4
  /tmp/percvenv/bin/python tests/golden/make_perception_golden.py \
      --official_repo /tmp/official/1d-tokenizer

Writes, next to this file (images NHWC float32 in [0, 1]):
  perception_shapes.json  {"vgg16", "lpips_lin", "convnext_small"}: {key: shape} of the released
                          files' layouts (vgg16 includes the classifier the converter drops)
  lpips_vgg.npz           x0, x1 [2, 64, 64, 3]; lpips [2], lpips_layers [2, 5] (lpips package,
                          normalize=True), lpips_titok [2] (TiTok's LPIPS), resized_56 (x0 through
                          F.interpolate bilinear antialias to 56x56)
  convnext_s.npz          logits [4, 1000] of concat(x0, x1), ImageNet-normalised at 64x64
  perceptual_loss.npz     per input size S in (64, 256) (x0, x1 repeated 4x for 256):
                          loss_{mode}_{S} for the three modes, lpips_{S} [2], logits_{S} [4, 1000]
                          (ConvNeXt at 224 of the resized target, then reconstruction)
"""
import argparse
import importlib
import json
import pathlib
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from golden_common import load_module, load_seeded_module, photos, prepare_official_imports

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 0
MODES = {"lpips": "lpips", "convnext": "convnext_s", "lpips_convnext": "lpips-convnext_s-1.0-0.1"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_tweak():
  """tests/golden/perception_seeding.py's tweak, loaded by path like seeded.py."""
  return load_module("perception_seeding", HERE / "perception_seeding.py").tweak


tweak = load_tweak()


def shapes_of(module):
  return {k: list(v.shape) for k, v in module.state_dict().items()}


def seeded_weights(seeded, family, shapes):
  return tweak(family, seeded.seeded_state_dict({k: tuple(v) for k, v in shapes.items()}, SEED))


def import_titok_perceptual(repo):
  """modeling.modules.perceptual_loss without modeling/modules/__init__ (which builds models)."""
  prepare_official_imports(repo)
  return (importlib.import_module("modeling.modules.perceptual_loss"),
          importlib.import_module("modeling.modules.lpips"))


def golden_images(size=64):
  x0 = photos(size)
  # A "reconstruction": blurred sideways, brightened, with a little noise.
  noise = np.random.default_rng(SEED).standard_normal(x0.shape).astype(np.float32)
  x1 = np.clip(0.7 * x0 + 0.3 * np.roll(x0, 3, axis=2) + 0.03 + 0.04 * noise, 0.0, 1.0)
  return x0, x1.astype(np.float32)


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()


def nhwc(t):
  return t.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  import lpips
  from torchvision import models
  torch.manual_seed(0)  # only the official inits use it; all weights are overwritten
  seeded = load_seeded_module()
  titok_perceptual, titok_lpips = import_titok_perceptual(args.official_repo.resolve())

  # Released layouts: torchvision's files are the models' state dicts; lpips' vgg.pth holds the
  # lin layers of LPIPS(net="vgg") only.
  with torch.device("meta"):
    vgg_shapes = shapes_of(models.vgg16(weights=None))
    convnext_shapes = shapes_of(models.convnext_small(weights=None))
  lin_shapes = {k: v for k, v in shapes_of(lpips.LPIPS(net="vgg", pretrained=False,
                                                       pnet_rand=True, verbose=False)).items()
                if k.startswith("lin") and not k.startswith("lins.")}
  table = {"vgg16": vgg_shapes, "lpips_lin": lin_shapes, "convnext_small": convnext_shapes}
  (args.out_dir / "perception_shapes.json").write_text(json.dumps(table, indent=1) + "\n")

  vgg = models.vgg16(weights=None)
  trunk = seeded_weights(seeded, "vgg16", {k: v for k, v in vgg_shapes.items()
                                          if k.startswith("features.")})
  missing, unexpected = vgg.load_state_dict({k: torch.from_numpy(v) for k, v in trunk.items()},
                                            strict=False)
  assert not unexpected and all(k.startswith("classifier.") for k in missing), missing
  lin = seeded_weights(seeded, "lpips_lin", lin_shapes)
  # Both LPIPS implementations read the lin layers from a file, as the released vgg.pth.
  lin_file = pathlib.Path(tempfile.mkdtemp()) / "vgg.pth"
  torch.save({k: torch.from_numpy(v) for k, v in lin.items()}, lin_file,
             _use_new_zipfile_serialization=False)
  convnext = models.convnext_small(weights=None)
  convnext.load_state_dict({k: torch.from_numpy(v) for k, v in
                            seeded_weights(seeded, "convnext_small", convnext_shapes).items()})
  convnext.eval()

  # Both LPIPS implementations build their trunk with torchvision's vgg16(): hand them ours.
  lpips.pretrained_networks.tv.vgg16 = lambda *a, **k: vgg
  titok_lpips.models.vgg16 = lambda *a, **k: vgg
  titok_lpips.get_ckpt_path = lambda *a, **k: str(lin_file)
  titok_perceptual.models.convnext_small = lambda *a, **k: convnext
  package_lpips = lpips.LPIPS(net="vgg", pnet_rand=True, model_path=str(lin_file),
                              verbose=False).eval()

  x0, x1 = golden_images()
  with torch.no_grad():
    total, layers = package_lpips(nchw(x0), nchw(x1), retPerLayer=True, normalize=True)
    lpips_out = {
        "x0": x0, "x1": x1, "lpips": total.reshape(-1).numpy(),
        "lpips_layers": torch.cat([r.reshape(-1, 1) for r in layers], 1).numpy(),
        "lpips_titok": titok_lpips.LPIPS().eval()(nchw(x0), nchw(x1)).reshape(-1).numpy(),
        "resized_56": nhwc(F.interpolate(nchw(x0), size=56, mode="bilinear",
                                         align_corners=False, antialias=True))}
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD)[None, :, None, None]
    logits = convnext((nchw(np.concatenate([x0, x1])) - mean) / std).numpy()

    losses = {}
    losses_modules = {m: titok_perceptual.PerceptualLoss(name).eval() for m, name in MODES.items()}
    for size in (64, 256):
      target, recon = (np.repeat(np.repeat(x, size // 64, 1), size // 64, 2) for x in (x0, x1))
      for m, module in losses_modules.items():
        # TiTok calls perceptual_loss(inputs, reconstructions).mean().
        losses[f"loss_{m}_{size}"] = np.float32(module(nchw(target), nchw(recon)).mean())
      losses[f"lpips_{size}"] = losses_modules["lpips"].lpips(
          nchw(target), nchw(recon)).reshape(-1).numpy()
      both = F.interpolate(nchw(np.concatenate([target, recon])), size=224, mode="bilinear",
                           align_corners=False, antialias=True)
      losses[f"logits_{size}"] = convnext((both - mean) / std).numpy()

  outputs = {"lpips_vgg": lpips_out, "convnext_s": {"logits": logits},
             "perceptual_loss": losses}
  for name, arrays in outputs.items():
    for k, v in arrays.items():
      if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: non-finite values in {k}")
    np.savez_compressed(args.out_dir / f"{name}.npz", **arrays)
    print(f"{name}: " + ", ".join(
        f"{k}{list(np.shape(v))}" if np.size(v) > 4 else f"{k}={np.round(v, 5).tolist()}"
        for k, v in arrays.items() if k not in ("x0", "x1")))
  print("lpips package vs TiTok's LPIPS, max |diff|:",
        np.abs(lpips_out["lpips"] - lpips_out["lpips_titok"]).max())
  print("logits std", logits.std(), "between images", np.abs(logits[0] - logits[1]).mean())


if __name__ == "__main__":
  main()
