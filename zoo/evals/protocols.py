"""The pinned preprocessing of images before FID / IS, selectable by name, on the host in PIL.

Reported rFIDs move by whole points with the crop and the quantisation (research/
image_tokenizers.md §1.5 and §6), so each protocol reproduces one reference exactly:

  titok  TiTok's eval transform (data/webdataset_reader.py): torchvision
         `Resize(S, BICUBIC, antialias=True)` of the shorter side (the longer one
         int(S * long / short)) + `CenterCrop(S)` (offsets round((H - S) / 2)) + `ToTensor()`.
         webdataset hands torchvision PIL images, so the resize is PIL's bicubic, which always
         antialiases: the same function as zoo.data's eval crop. The same transform on a uint8
         tensor lands up to 8 levels away on photos (tests/golden/make_protocol_golden.py):
         it is not this protocol.
  titok_wds  the images TiTok actually evaluates on: its data/convert_imagenet_to_wds.py hands
         webdataset decoded PIL images under "jpg", which webdataset's TarWriter re-encodes as
         JPEG quality 100 (PIL defaults otherwise: 4:2:0 chroma subsampling); so a JPEG round
         trip comes first, then `titok`. On photos it moves pixels by up to ~40 levels at sharp
         colour edges (the chroma subsampling), a few levels elsewhere.
  adm    guided-diffusion's `center_crop_arr` (ADM reference batches, gFID): halve both sides
         (floor) with PIL BOX while the shorter side is >= 2S, then PIL BICUBIC to
         round(side * S / short), then a center crop at offsets floor((H - S) / 2).

All take and give uint8 [H, W, 3]. Before the Inception network TiTok converts the real images
(ToTensor output, exactly k / 255) and the reconstructions with `(x * 255).to(torch.uint8)`, a
truncation in float32: `to_inception_uint8`. Its eval_reconstruction first clamps
reconstructions to [0, 1] and rounds them to multiples of 1 / 255 (`titok_quantize`), so in the
end a reconstruction is rounded (half to even) and a real image is unchanged.
"""
import io

import numpy as np
from PIL import Image

from zoo.data.transforms import center_crop, resize_shorter_side

# Floats further than this outside [0, 1] are taken for another convention ([0, 255], [-1, 1])
# rather than a reconstruction's overshoot, which clamping is meant for.
RANGE_SLACK = 0.5


def titok_crop(image: np.ndarray, size: int) -> np.ndarray:
  return np.ascontiguousarray(center_crop(resize_shorter_side(image, size), size))


def titok_wds_crop(image: np.ndarray, size: int) -> np.ndarray:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=100)  # webdataset's "jpg" encoder
  with Image.open(buffer) as decoded:
    image = np.asarray(decoded.convert("RGB"))
  return titok_crop(image, size)


def adm_crop(image: np.ndarray, size: int) -> np.ndarray:
  pil = Image.fromarray(image)
  # guided-diffusion's own stand-in for PIL's `reducing_gap`: BOX halving first.
  while min(pil.size) >= 2 * size:
    pil = pil.resize(tuple(s // 2 for s in pil.size), resample=Image.BOX)
  scale = size / min(pil.size)
  pil = pil.resize(tuple(round(s * scale) for s in pil.size), resample=Image.BICUBIC)
  arr = np.asarray(pil)
  top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
  return np.ascontiguousarray(arr[top:top + size, left:left + size])


PROTOCOLS = {"titok": titok_crop, "titok_wds": titok_wds_crop, "adm": adm_crop}


def preprocess(image: np.ndarray, protocol: str, image_size: int = 256) -> np.ndarray:
  """One uint8 [H, W, 3] image -> uint8 [image_size, image_size, 3] by the named protocol."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown evaluation protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
  if int(image_size) != image_size or image_size < 1:
    raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise TypeError(f"the {protocol} protocol starts from decoded uint8 images, got dtype "
                    f"{image.dtype} (convert with zoo.data.transforms.to_rgb_uint8)")
  if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
    raise ValueError(f"expected one RGB image [H, W, 3], got shape {image.shape}")
  return PROTOCOLS[protocol](image, int(image_size))


def _check_unit_floats(x, what: str) -> np.ndarray:
  x = np.asarray(x)
  if not np.issubdtype(x.dtype, np.floating):
    raise TypeError(f"{what} takes float images in [0, 1], got dtype {x.dtype}")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{what}: images contain NaN or Inf")
  if x.size and (x.min() < -RANGE_SLACK or x.max() > 1 + RANGE_SLACK):
    raise ValueError(f"{what} takes images in [0, 1] (a little overshoot is clamped), got "
                     f"values in [{x.min():.3g}, {x.max():.3g}]: [0, 255] or [-1, 1] data?")
  return x


def to_inception_uint8(x) -> np.ndarray:
  """TiTok's cast before Inception: clamp to [0, 1], then (x * 255) truncated, in float32."""
  x = _check_unit_floats(x, "to_inception_uint8").astype(np.float32)
  return (np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def titok_quantize(x) -> np.ndarray:
  """TiTok's eval_reconstruction on reconstructions: clamp, round to k / 255, in float32."""
  x = _check_unit_floats(x, "titok_quantize").astype(np.float32)
  return np.round(np.clip(x, 0.0, 1.0) * np.float32(255.0)) / np.float32(255.0)
