"""`builtin:photos`: the RGB photographs that ship inside scikit-image, so the zoo trains and
evaluates out of the box with no download.

Splits, disjoint by photo (never two views of one scene across them):
  train: astronaut, chelsea, hubble_deep_field, immunohistochemistry, motorcycle_left, retina
  eval:  coffee, rocket
The train split is the photos themselves; the pipeline makes random scale crops of them.
The eval split is a fixed list of EVAL_CROPS_PER_PHOTO square crops per photo, chosen by a
constant seed, so eval numbers are comparable across steps, runs and machines.
"""
import functools

import numpy as np
import skimage.data

from zoo.data.transforms import to_rgb_uint8

TRAIN_PHOTOS = (
    "astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry", "motorcycle_left",
    "retina")
EVAL_PHOTOS = ("coffee", "rocket")
SPLITS = {"train": TRAIN_PHOTOS, "eval": EVAL_PHOTOS}
EVAL_CROPS_PER_PHOTO = 16
EVAL_MIN_SCALE = 0.2
_EVAL_SEED = 20240601


@functools.cache
def load_photo(name: str) -> np.ndarray:
  """uint8 [H, W, 3]; cached because the pipeline crops the same few photos over and over."""
  if name == "motorcycle_left":
    image = skimage.data.stereo_motorcycle()[0]
  else:
    image = getattr(skimage.data, name)()
  return to_rgb_uint8(image)


def eval_box(photo: np.ndarray, crop_index: int) -> tuple[int, int, int]:
  """(top, left, side) of eval crop `crop_index`: crop 0 is the central full-height square."""
  h, w = photo.shape[:2]
  short = min(h, w)
  if crop_index == 0:
    return int(round((h - short) / 2)), int(round((w - short) / 2)), short
  rng = np.random.default_rng([_EVAL_SEED, crop_index])
  side = int(rng.uniform(EVAL_MIN_SCALE, 1.0) * short)
  return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side


class SamplePhotos:
  """Random-access source of uint8 [H, W, 3] images: whole photos (train) or fixed crops (eval)."""

  def __init__(self, split: str):
    if split not in SPLITS:
      raise ValueError(f"builtin:photos has splits {sorted(SPLITS)}, got split={split!r}.")
    self.split = split
    self.names = SPLITS[split]

  def __len__(self):
    return len(self.names) * (EVAL_CROPS_PER_PHOTO if self.split == "eval" else 1)

  def __getitem__(self, index: int) -> np.ndarray:
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} examples")
    # Photos interleave, so any prefix of the eval split shows every eval photo.
    photo = load_photo(self.names[index % len(self.names)])
    if self.split != "eval":
      return photo
    top, left, side = eval_box(photo, index // len(self.names))
    return photo[top:top + side, left:left + side]
