"""`folder:/path`: every image under a directory (recursive), decoded with PIL on access."""
import os

import numpy as np
from PIL import Image

from zoo.data.transforms import to_rgb_uint8

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def find_images(root: str) -> list[str]:
  """Sorted paths, so the index -> file map is the same on every process and every run."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f"Image folder {root!r} does not exist or is not a directory.")
  paths = []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    paths.extend(
        os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(EXTENSIONS))
  if not paths:
    raise ValueError(f"Image folder {root!r} holds no images ({'/'.join(EXTENSIONS)}).")
  return paths


class ImageFolder:
  """Random-access source of uint8 [H, W, 3] images; holds only paths, so it pickles cheaply."""

  def __init__(self, root: str):
    self.root = root
    self.paths = find_images(root)

  def __len__(self):
    return len(self.paths)

  def __getitem__(self, index: int) -> np.ndarray:
    with Image.open(self.paths[index]) as image:
      return to_rgb_uint8(np.asarray(image.convert("RGB")))
