"""A PNG a person can look at: originals on the top row, their reconstructions below."""
import os
import pathlib

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """Float images in [0, 1] -> uint8, clipped and rounded (half to even) to 0..255."""
  x = np.asarray(images, dtype=np.float64)
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_recon_grid(path, originals, reconstructions, max_images: int = 8) -> str:
  """Writes the first `max_images` pairs as a [2H, n*W] PNG with no spacing; returns the path.

  Both inputs are NHWC float in [0, 1] with C = 1 or 3; values outside [0, 1] are clipped,
  since a reconstruction may overshoot.
  """
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"the grid is written as PNG; give a path ending in .png, got {path}")
  if max_images < 1:
    raise ValueError(f"max_images must be at least 1; got {max_images}")
  rows = []
  for name, x in (("originals", originals), ("reconstructions", reconstructions)):
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f"{name} must be NHWC [B, H, W, 1 or 3]; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
      raise TypeError(f"{name} must be float in [0, 1]; got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name} contain NaN or Inf")
    rows.append(x)
  if rows[0].shape != rows[1].shape:
    raise ValueError(f"originals and reconstructions must have the same shape; "
                     f"got {rows[0].shape} and {rows[1].shape}")
  n = min(rows[0].shape[0], max_images)
  # [n, H, W, C] -> [H, n * W, C] per row, then the two rows stacked.
  grid = np.concatenate([np.concatenate(list(x[:n]), axis=1) for x in rows], axis=0)
  grid = to_uint8(grid)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path, format="PNG")
  return os.fspath(path)
