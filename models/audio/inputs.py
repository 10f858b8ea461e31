"""Checks on the audio a codec is given: [B, T, C] float in [-1, 1] at the model's rate."""
import jax
import jax.numpy as jnp
import numpy as np


def check_audio(x, *, channels: int, model_rate: int, sample_rate: int | None = None,
                name: str = "audio"):
  """Raises a ValueError/TypeError that names the problem; value checks run on concrete arrays.

  `sample_rate` is the caller's statement of the audio's rate (arrays do not carry one); when
  given it must equal the model's, since a codec silently mangles audio at another rate.
  """
  if sample_rate is not None and int(sample_rate) != int(model_rate):
    raise ValueError(f"{name} is at {sample_rate} Hz but the model expects {model_rate} Hz; "
                     "resample it first (zoo.data.resample)")
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 3:
    raise ValueError(f"{name} must be [B, T, C] (batch, samples, channels); got shape {shape}")
  if shape[-1] != channels:
    raise ValueError(f"{name} must have {channels} channel(s) on the last axis [B, T, C]; "
                     f"got shape {shape}" + (" (is it [B, C, T]?)" if shape[1] == channels else ""))
  if shape[1] == 0:
    raise ValueError(f"{name} is empty (0 samples)")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name} must be float in [-1, 1]; got dtype {x.dtype} "
                    "(divide int16 PCM by 32768)")
  if isinstance(x, jax.core.Tracer) or not x.size:
    return
  xp = np if isinstance(x, np.ndarray) else jnp  # no host copy of device arrays
  if not bool(xp.all(xp.isfinite(x))):
    raise ValueError(f"{name} contains NaN or Inf")
  peak = float(xp.max(xp.abs(x)))
  if peak > 1.0:
    raise ValueError(f"{name} must be in [-1, 1]; got a peak of {peak:.4g}")
