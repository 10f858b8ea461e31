"""Image transforms shared by every source: uint8 HWC RGB in, float32 [0, 1] HWC out.

Resizing is PIL bicubic, which antialiases when it shrinks: the same as torchvision's
`Resize(size, bicubic, antialias=True)` on PIL images, so our eval crops match the reference
protocol (resize shorter side + center crop, see research/image_tokenizers.md §1.5).
"""
import numpy as np
from PIL import Image


def to_rgb_uint8(image) -> np.ndarray:
  """Any decoded image (gray, gray+1, RGBA, bool, float in [0, 1]) -> uint8 [H, W, 3]."""
  image = np.asarray(image)
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  elif image.dtype != np.uint8:
    if np.issubdtype(image.dtype, np.floating):
      image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    else:
      raise ValueError(f"Unsupported image dtype {image.dtype}: expected uint8, bool or float.")
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError(f"Expected an image [H, W] or [H, W, 1|3|4], got shape {image.shape}.")
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  return np.ascontiguousarray(image[..., :3])


def to_float(image: np.ndarray) -> np.ndarray:
  return image.astype(np.float32) / 255.0


def resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:
  """Shorter side -> size, keeping the aspect ratio; torchvision's rounding (int truncation)."""
  h, w = image.shape[:2]
  if h <= w:
    new_h, new_w = size, int(size * w / h)
  else:
    new_h, new_w = int(size * h / w), size
  if (new_h, new_w) == (h, w):
    return image
  return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BICUBIC))


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """torchvision's CenterCrop offsets: round((H - size) / 2)."""
  h, w = image.shape[:2]
  top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
  return image[top:top + size, left:left + size]


def eval_transform(image: np.ndarray, size: int) -> np.ndarray:
  """Deterministic: resize the shorter side to `size`, then center crop."""
  return to_float(center_crop(resize_shorter_side(image, size), size))


def random_crop_flip(image: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
  """TiTok's training transform: resize the shorter side, random size x size crop, random flip."""
  image = resize_shorter_side(image, size)
  h, w = image.shape[:2]
  top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
  image = image[top:top + size, left:left + size]
  if rng.random() < 0.5:
    image = image[:, ::-1]
  return to_float(image)


def random_scale_crop_flip(
    image: np.ndarray, rng: np.random.Generator, size: int, min_scale: float = 0.2
) -> np.ndarray:
  """A square crop of side U(min_scale, 1) x shorter side at a random place, resized, random flip.

  Used where there are only a handful of photos, to make many different training images.
  """
  h, w = image.shape[:2]
  side = rng.uniform(min_scale, 1.0) * min(h, w)
  top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
  crop = resize_box(image, (left, top, left + side, top + side), size)
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  return to_float(crop)


def resize_box(image: np.ndarray, box, size: int) -> np.ndarray:
  """The (left, top, right, bottom) region of `image` (fractions allowed) resized to size^2."""
  return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC, box=tuple(box)))
