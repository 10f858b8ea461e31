"""Golden crops of the two pinned evaluation protocols, from the reference code.

  titok: torchvision `Resize(S, InterpolationMode.BICUBIC, antialias=True)` + `CenterCrop(S)` +
         `ToTensor()`, applied to PIL images as TiTok's data/webdataset_reader.py does (webdataset
         decodes to PIL); also applied to uint8 tensors, the other way torchvision can do it, to
         record how far that lands (it is not TiTok's protocol);
  titok_wds: the same after a trip through webdataset as TiTok's data/convert_imagenet_to_wds.py
         and data/webdataset_reader.py make it: TarWriter gets the PIL image under "jpg"
         (re-encoded as JPEG), WebDataset(...).decode(ImageHandler("pil")) reads it back;
  adm:   `center_crop_arr` of github.com/openai/guided-diffusion (guided_diffusion/
         image_datasets.py), imported from a checkout with its unused imports (blobfile, mpi4py)
         stubbed out; not copied here.
on scikit-image photos of different sizes and aspect ratios. Nothing is downloaded.

  pip download --no-deps webdataset==1.0.2 braceexpand pyyaml -d /tmp/wdswheels  (for python 3.11)
  (cd /tmp/wdssrc && for w in /tmp/wdswheels/*.whl; do python3 -m zipfile -e $w .; done)
  PYTHONPATH=/tmp/wdssrc /tmp/percvenv/bin/python tests/golden/make_protocol_golden.py \
      --guided_diffusion /path/to/guided-diffusion

Writes protocols.npz next to this file: for each photo P in PHOTOS and size S in (64, 256):
`{protocol}_{P}_{S}` uint8 [S, S, 3] for protocol in titok, titok_wds, titok_tensor, adm, where S
is 64;
for S = 256, which would make the file large, `sha256_{protocol}_{P}_256` of the crop's bytes and
`maxdiff_titok_tensor_{P}_256` (max |PIL - tensor| in uint8 levels).
"""
import argparse
import hashlib
import pathlib
import sys
import tempfile
import types

import numpy as np
import torch
from PIL import Image

from golden_common import load_module

HERE = pathlib.Path(__file__).resolve().parent
SIZES = (64, 256)


def photos():
  """name -> uint8 [H, W, 3]: square 512, landscape 400x600, portrait 600x400, odd 300x451."""
  from skimage import data
  return {"astronaut": data.astronaut(), "coffee": data.coffee(),
          "coffee_tall": np.ascontiguousarray(data.coffee().transpose(1, 0, 2)),
          "chelsea": data.chelsea()}


def import_center_crop_arr(repo: pathlib.Path):
  for name in ("blobfile", "mpi4py"):
    sys.modules.setdefault(name, types.ModuleType(name))
  sys.modules["mpi4py"].MPI = None
  module = load_module("image_datasets", repo / "guided_diffusion" / "image_datasets.py")
  return module.center_crop_arr


def titok_pil(image, size):
  from torchvision import transforms as T
  t = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                 T.CenterCrop(size), T.ToTensor()])
  x = t(image if isinstance(image, Image.Image) else Image.fromarray(image))
  return (x * 255).to(torch.uint8).permute(1, 2, 0).numpy()  # TiTok's cast before Inception


def through_webdataset(image, tmp_dir):
  """The PIL image TiTok's eval loader gets for `image` (a decoded ImageNet JPEG)."""
  import webdataset as wds
  path = str(pathlib.Path(tmp_dir) / "shard.tar")
  with wds.TarWriter(path) as sink:  # as convert_imagenet_to_wds.py: img.convert("RGB")
    sink.write({"__key__": "00000000", "jpg": Image.fromarray(image).convert("RGB"), "cls": 0})
  handler = wds.autodecode.ImageHandler("pil", extensions=["webp", "png", "jpg", "jpeg"])
  sample = next(iter(wds.WebDataset(path, shardshuffle=False).decode(handler)))
  return sample["jpg"]


def titok_tensor(image, size):
  from torchvision import transforms as T
  t = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
                 T.CenterCrop(size)])
  return t(torch.from_numpy(image).permute(2, 0, 1)).permute(1, 2, 0).numpy()


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--guided_diffusion", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  center_crop_arr = import_center_crop_arr(args.guided_diffusion.resolve())
  out = {}
  tmp_dir = tempfile.mkdtemp()
  for name, image in photos().items():
    wds_image = through_webdataset(image, tmp_dir)
    for size in SIZES:
      crops = {"titok": titok_pil(image, size), "titok_wds": titok_pil(wds_image, size),
               "titok_tensor": titok_tensor(image, size),
               "adm": center_crop_arr(Image.fromarray(image), size)}
      for protocol, crop in crops.items():
        assert crop.dtype == np.uint8 and crop.shape == (size, size, 3), (protocol, crop.shape)
        if size == 64:
          out[f"{protocol}_{name}_{size}"] = crop
        else:
          out[f"sha256_{protocol}_{name}_{size}"] = np.array(hashlib.sha256(
              np.ascontiguousarray(crop).tobytes()).hexdigest())
      diff = np.abs(crops["titok"].astype(int) - crops["titok_tensor"]).max()
      out[f"maxdiff_titok_tensor_{name}_{size}"] = np.int64(diff)
      wds_diff = np.abs(crops["titok"].astype(int) - crops["titok_wds"]).max()
      print(name, image.shape, size, "PIL vs tensor max |diff|:", diff, " titok vs titok_wds:",
            wds_diff)
  np.savez_compressed(args.out_dir / "protocols.npz", **out)


if __name__ == "__main__":
  main()
