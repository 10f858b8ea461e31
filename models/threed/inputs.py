"""Checks on the point sets a 3D tokenizer is given ([B, N, 3] float in the unit cube)."""
import jax
import jax.numpy as jnp
import numpy as np

# Shapes are normalised into [-1, 1]^3 (3DShape2VecSet's ShapeNet data and the zoo's loaders);
# the small slack admits points a mesh sampler puts on the boundary.
COORD_LIMIT = 1.0 + 1e-3


def check_points(x, *, min_points: int = 1, num_points: int | None = None,
                 bound: float | None = COORD_LIMIT, name: str = "points"):
  """Raises a ValueError/TypeError naming the problem: layout, count, dtype, NaNs, range.

  `bound`: the largest |coordinate| allowed (None: any, e.g. for occupancy queries). Value
  checks run on concrete arrays only (inside jit they are skipped).
  """
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 3 or shape[-1] != 3:
    raise ValueError(f"{name} must be [B, N, 3] (x, y, z last); got shape {shape}")
  if num_points is not None and shape[1] != num_points:
    raise ValueError(f"{name} must hold {num_points} points each; got {shape[1]}")
  if shape[1] < min_points:
    raise ValueError(f"{name} must hold at least {min_points} points each; got {shape[1]}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name} must be float coordinates; got dtype {x.dtype}")
  if isinstance(x, jax.core.Tracer) or not x.size:
    return
  xp = np if isinstance(x, np.ndarray) else jnp
  if not bool(xp.all(xp.isfinite(x))):
    raise ValueError(f"{name} contains NaN or Inf")
  extent = float(xp.max(xp.abs(x)))
  if bound is not None and extent > bound:
    raise ValueError(f"{name} must be normalised into [-1, 1]^3; got coordinates up to "
                     f"{extent:.4g} in magnitude (centre the shape and scale it to fit)")
