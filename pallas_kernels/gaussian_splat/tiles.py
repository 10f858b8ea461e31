"""Per-tile math shared by the TPU and GPU splatting kernels.

A tile is G Gaussians x P pixels. Gaussians are five [G, 1] columns (sigma_x, sigma_y, rho,
x, y; stored as the first lanes of a [G, 8] block), pixels two [1, P] rows (x, y), so every
value below is a [G, P] array. The kernels load the columns and rows themselves (Triton does
not lower value slices; Mosaic does).
"""
import jax
import jax.numpy as jnp

PARAM_LANES = 8
# Padding Gaussians and padding pixels sit here: far outside every truncation box, so their
# weights are exactly 0 and so are their gradients.
FAR_AWAY = 1e6


def tile_terms(columns, px, py, dmax: float):
  """(weight, dx, dy) [G, P] each: the truncated unnormalised Gaussian weights (gs.cu)."""
  sx, sy, rho, x0, y0 = columns
  dx = px - x0
  dy = py - y0
  inv_sx, inv_sy = 1.0 / sx, 1.0 / sy
  quad = (inv_sx * inv_sx * dx * dx - 2.0 * rho * dx * dy * inv_sx * inv_sy
          + dy * dy * inv_sy * inv_sy)
  weight = jnp.exp(quad * (-1.0 / (1.0 - rho * rho) / 2.0))
  inside = (jnp.abs(dx) <= dmax * sx) & (jnp.abs(dy) <= dmax * sy)
  return jnp.where(inside, weight, 0.0), dx, dy


def tile_is_live(columns, px, py, dmax: float):
  """Whether any Gaussian's truncation box meets the pixel tile's bounding box."""
  sx, sy, _, x0, y0 = columns
  x_lo, x_hi = jnp.min(px), jnp.max(px)
  y_lo, y_hi = jnp.min(py), jnp.max(py)
  meets = ((x0 + dmax * sx >= x_lo) & (x0 - dmax * sx <= x_hi)
           & (y0 + dmax * sy >= y_lo) & (y0 - dmax * sy <= y_hi))
  return jnp.max(jnp.where(meets, 1.0, 0.0)) > 0.0


def dot(a, b, contract):
  """a . b over the given (lhs, rhs) dims, float32 at full precision."""
  return jax.lax.dot_general(a, b, ((contract[0], contract[1]), ((), ())),
                             precision=jax.lax.Precision.HIGHEST,
                             preferred_element_type=jnp.float32)


def geometry_gradients(columns, weight, dx, dy, upstream):
  """d loss / d (sigma_x, sigma_y, rho, x, y), each [G, 1], for one tile.

  upstream [G, P] is sum_c feature[g, c] * d loss / d grid[p, c]. The formulas are the
  derivatives of the weight that gs.cu's backward evaluates.
  """
  sx, sy, rho, _, _ = columns
  w1 = -0.5 / (1.0 - rho * rho)
  w2 = 1.0 / (sx * sx)
  w3 = 1.0 / (sx * sy)
  w4 = 1.0 / (sy * sy)
  quad = w2 * dx * dx - 2.0 * rho * w3 * dx * dy + w4 * dy * dy
  a = upstream * weight * (2.0 * w1)  # [G, P]
  cross = w3 * rho * dx * dy
  total = lambda t: jnp.sum(t, axis=1, keepdims=True)
  d_sx = total(a * (cross - w2 * dx * dx)) / sx
  d_sy = total(a * (cross - w4 * dy * dy)) / sy
  d_rho = -total(a * (2.0 * w1 * rho * quad + w3 * dx * dy))
  d_x = total(a * (rho * w3 * dy - w2 * dx))
  d_y = total(a * (rho * w3 * dx - w4 * dy))
  return d_sx, d_sy, d_rho, d_x, d_y
