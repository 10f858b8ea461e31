"""Checks on the videos a tokenizer is given (NTHWC float in [0, 1])."""
import jax
import jax.numpy as jnp
import numpy as np


def check_videos(x, *, frames: int | None = None, size: int | None = None,
                 frame_multiple: int = 1, size_multiple: int = 1, name: str = "video"):
  """Raises a ValueError/TypeError naming the problem: layout, frame count, size, dtype, range.

  `frames`/`size`: the exact frame count and side length wanted (None: any multiple of
  `frame_multiple` / `size_multiple`). Value checks run on concrete arrays only.
  """
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 5:
    raise ValueError(f"{name} must be NTHWC [B, T, H, W, 3]; got shape {shape}")
  if shape[-1] != 3:
    raise ValueError(f"{name} must have 3 channels on the last axis (NTHWC); got shape {shape} "
                     "(a channels-first [B, C, T, H, W] video needs moving C last)")
  t, h, w = shape[1:4]
  if frames is not None and t != frames:
    raise ValueError(f"{name} must have {frames} frames; got {t} (shape {shape})")
  if t % frame_multiple:
    raise ValueError(f"{name}'s frame count {t} must be a multiple of the temporal patch "
                     f"{frame_multiple}")
  if size is not None and (h, w) != (size, size):
    raise ValueError(f"{name} frames must be {size}x{size}; got {h}x{w} (shape {shape})")
  if h % size_multiple or w % size_multiple:
    raise ValueError(f"{name} frames {h}x{w} must be multiples of the patch {size_multiple}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name} must be float in [0, 1]; got dtype {x.dtype} (divide uint8 by 255)")
  if isinstance(x, jax.core.Tracer) or not x.size:
    return
  xp = np if isinstance(x, np.ndarray) else jnp
  if not bool(xp.all(xp.isfinite(x))):  # first and alone: CPU min/max may skip NaNs
    raise ValueError(f"{name} contains NaN or Inf")
  lo, hi = float(xp.min(x)), float(xp.max(x))
  if lo < 0.0 or hi > 1.0:
    raise ValueError(f"{name} must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")
