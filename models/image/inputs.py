"""Checks on the images a tokenizer is given (NHWC float in [0, 1])."""
import jax
import jax.numpy as jnp
import numpy as np


def check_images(x, image_size: int, *, name: str = "images"):
  """Raises a ValueError/TypeError that names the problem; value checks run on concrete arrays."""
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 4:
    raise ValueError(f"{name} must be NHWC [B, H, W, 3]; got shape {shape}")
  if shape[-1] != 3:
    raise ValueError(f"{name} must have 3 channels on the last axis (NHWC); got shape {shape}")
  if shape[1:3] != (image_size, image_size):
    raise ValueError(
        f"{name} must be {image_size}x{image_size}; got {shape[1]}x{shape[2]} (shape {shape})")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name} must be float in [0, 1]; got dtype {x.dtype} (divide uint8 by 255)")
  if isinstance(x, jax.core.Tracer) or not x.size:  # an empty batch has no values to check
    return
  # Finiteness first and on its own: XLA's CPU min/max reductions may skip NaNs.
  xp = np if isinstance(x, np.ndarray) else jnp  # no host copy of device arrays
  if not bool(xp.all(xp.isfinite(x))):
    raise ValueError(f"{name} contain NaN or Inf")
  lo, hi = float(xp.min(x)), float(xp.max(x))
  if lo < 0.0 or hi > 1.0:
    raise ValueError(f"{name} must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")
