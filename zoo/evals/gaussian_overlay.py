"""A picture of GPSToken's tokens: each Gaussian's 1-sigma ellipse drawn over the image."""
import os
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from models.image.gpstoken_edit import ellipse_points
from zoo.evals.grid import to_uint8


def overlay_ellipses(image, tokens, *, radius: float = 1.0, color=(255, 64, 32), centres=True):
  """image [H, W, 3] float in [0, 1], tokens [T, 5 + C] of that image -> uint8 [H, W, 3]."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"image must be [H, W, 3]; got {image.shape}")
  tokens = np.asarray(tokens)
  if tokens.ndim != 2 or tokens.shape[-1] < 5:
    raise ValueError(f"tokens must be [T, 5 + C] for one image; got {tokens.shape}")
  h, w = image.shape[:2]
  canvas = Image.fromarray(to_uint8(image))
  draw = ImageDraw.Draw(canvas)
  for points in ellipse_points(tokens[None], h, w, radius=radius)[0]:
    draw.line([tuple(p) for p in points] + [tuple(points[0])], fill=color, width=1)
  if centres:
    for x, y in ellipse_points(tokens[None], h, w, radius=0.0, num=1)[0, :, 0]:
      draw.point((x, y), fill=(255, 255, 255))
  return np.asarray(canvas)


def save_token_overlay(path, images, tokens, reconstructions=None, max_images: int = 4) -> str:
  """PNG: each image with its ellipses, beside its reconstruction when given; returns the path."""
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"the overlay is written as PNG; give a path ending in .png, got {path}")
  images = np.asarray(images)
  rows = []
  for i in range(min(len(images), max_images)):
    row = [overlay_ellipses(images[i], tokens[i])]
    if reconstructions is not None:
      row.append(to_uint8(reconstructions[i]))
    rows.append(np.concatenate(row, axis=1))
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.concatenate(rows, axis=0)).save(path, format="PNG")
  return os.fspath(path)
