"""Editing GPSToken tokens: move, scale or drop Gaussians, then `model.decode` the result.

Tokens are [B, T, 5 + C] canvas tokens (sigma_x, sigma_y, rho, x, y, features) as
`GPSToken.encode` returns them; `which` selects tokens: a bool mask [T] or [B, T], or integer
indices into T (the same for every image). Every helper returns new tokens. Rendering is an
additive sum, so dropping a token (zero weight: its features set to 0) is exactly rendering
without it, and the token count the decoder expects is kept.
"""
import jax.numpy as jnp
import numpy as np


def _mask(tokens, which):
  b, t = tokens.shape[:2]
  w = np.asarray(which)
  if w.dtype == bool:
    if w.shape not in ((t,), (b, t)):
      raise ValueError(f"a token mask must be [{t}] or [{b}, {t}]; got {w.shape}")
    mask = np.broadcast_to(w, (b, t))
  elif np.issubdtype(w.dtype, np.integer):
    w = w.reshape(-1)
    if w.size and (w.min() < -t or w.max() >= t):
      raise IndexError(f"token indices must be in [-{t}, {t}); got {w.min()}..{w.max()}")
    mask = np.zeros((b, t), bool)
    mask[:, w] = True
  else:
    raise TypeError(f"`which` must be a bool mask or integer indices; got dtype {w.dtype}")
  return jnp.asarray(mask)[..., None]


def _check(tokens):
  if getattr(tokens, "ndim", 0) != 3 or tokens.shape[-1] < 6:
    raise ValueError(f"tokens must be [B, T, 5 + C]; got {getattr(tokens, 'shape', None)}")
  return jnp.asarray(tokens)


def move(tokens, which, dx: float, dy: float):
  """Shifts the centres of the selected Gaussians by (dx, dy) in [-1, 1] canvas units."""
  tokens = _check(tokens)
  shift = jnp.zeros(tokens.shape[-1], tokens.dtype).at[3].set(dx).at[4].set(dy)
  return jnp.where(_mask(tokens, which), tokens + shift, tokens)


def scale(tokens, which, factor: float):
  """Multiplies sigma_x and sigma_y of the selected Gaussians by `factor` (> 0)."""
  if not factor > 0:
    raise ValueError(f"scale factor must be positive; got {factor}")
  tokens = _check(tokens)
  mult = jnp.ones(tokens.shape[-1], tokens.dtype).at[0:2].set(factor)
  return jnp.where(_mask(tokens, which), tokens * mult, tokens)


def drop(tokens, which):
  """Removes the selected Gaussians from the render (their features become 0)."""
  tokens = _check(tokens)
  keep = jnp.ones(tokens.shape[-1], tokens.dtype).at[5:].set(0.0)
  return jnp.where(_mask(tokens, which), tokens * keep, tokens)


def ellipse_points(tokens, height: int, width: int, *, radius: float = 1.0, num: int = 48):
  """[B, T, num, 2] pixel (col, row) points of each token's `radius`-sigma ellipse.

  The Gaussian's covariance in canvas units is [[sx^2, rho sx sy], [rho sx sy, sy^2]]; the
  canvas [-1, 1] maps to pixels as the renderer's grid, x = (u + 1) / 2 * (W - 1).
  """
  t = np.asarray(tokens, np.float64)
  sx, sy, rho, x0, y0 = (t[..., k, None] for k in range(5))
  a = 2.0 * np.pi * np.arange(num) / num
  c, s = np.cos(a), np.sin(a)
  # Cholesky of the covariance: [[sx, 0], [rho sy, sy sqrt(1 - rho^2)]].
  u = x0 + radius * sx * c
  v = y0 + radius * (rho * sy * c + sy * np.sqrt(np.clip(1.0 - rho ** 2, 0.0, None)) * s)
  return np.stack([(u + 1.0) / 2.0 * (width - 1), (v + 1.0) / 2.0 * (height - 1)], axis=-1)
