"""Clip transforms shared by every video source: uint8 [T, H, W, 3] in, float32 [0, 1] out.

Temporal sampling picks `num_frames` frames `stride` source frames apart, or at a target
frame rate (the nearest source frame to each target time). Spatially, a clip is resized so its
shorter side is `size` (PIL bilinear, antialiased when it shrinks, as torchvision's
Resize(size, antialias=True) on tensors) and cropped to size x size, the same crop for every
frame: centred for evaluation, random (with a random horizontal flip) for training.
"""
import numpy as np
from PIL import Image


class ClipTooShortError(ValueError):
  pass


def frame_step(fps: float, *, stride: int = 1, target_fps: float | None = None) -> float:
  """Source frames between two sampled frames."""
  if target_fps is not None:
    if target_fps <= 0:
      raise ValueError(f"target_fps must be positive, got {target_fps}")
    return fps / target_fps
  if stride < 1:
    raise ValueError(f"frame stride must be >= 1, got {stride}")
  return float(stride)


def span(num_frames: int, step: float) -> int:
  """Source frames a clip of `num_frames` frames `step` apart covers."""
  return int(np.floor((num_frames - 1) * step)) + 1


def clip_indices(total: int, num_frames: int, step: float, start: int) -> np.ndarray:
  need = span(num_frames, step)
  if start < 0 or start + need > total:
    raise ClipTooShortError(f"a clip of {num_frames} frames {step:g} apart needs {need} source "
                            f"frames from frame {start}; the video has {total}")
  return start + np.floor(np.arange(num_frames) * step + 1e-6).astype(np.int64)


def _resize_frame(frame, size_hw):
  h, w = size_hw
  if frame.shape[:2] == (h, w):
    return frame
  return np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR))


def resize_crop(clip: np.ndarray, size: int, *, rng: np.random.Generator | None = None
                ) -> np.ndarray:
  """Shorter side -> size, then a size x size crop: centred, or random + random flip with rng."""
  t, h, w = clip.shape[:3]
  if h <= w:
    new_h, new_w = size, int(size * w / h)
  else:
    new_h, new_w = int(size * h / w), size
  if rng is None:
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    flip = False
  else:
    top, left = int(rng.integers(0, new_h - size + 1)), int(rng.integers(0, new_w - size + 1))
    flip = bool(rng.integers(0, 2))
  out = np.stack([_resize_frame(f, (new_h, new_w))[top:top + size, left:left + size]
                  for f in clip])
  return out[:, :, ::-1] if flip else out


def to_float(clip: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(clip, dtype=np.float32) / 255.0
