"""Additive 2D Gaussian splatting in plain jnp: the semantics every kernel reproduces.

The semantics are those of GPSToken's CUDA renderer (xtudbxk/GPSToken, gscuda/gs.cu):
  * pixel (i, j) of an H x W grid sits at x = 2j/(W-1) - 1, y = 2i/(H-1) - 1;
  * a Gaussian (sigma_x, sigma_y, rho, x0, y0) weighs a pixel by the unnormalised
    exp(-(dx^2/sx^2 - 2 rho dx dy/(sx sy) + dy^2/sy^2) / (2 (1 - rho^2))), dx = x - x0;
  * it is truncated to 0 where |dx| > dmax * sigma_x or |dy| > dmax * sigma_y;
  * the grid is the plain sum of weight x feature over Gaussians (no normalisation, no
    depth order), in float32.
"""
import jax.numpy as jnp
import numpy as np

# Gaussian parameters in token order: sigma_x, sigma_y, rho, x, y.
NUM_GEOMETRY = 5


def pixel_coords(height: int, width: int):
  """(x [W], y [H]) pixel-centre coordinates in [-1, 1], float32, as gs.cu computes them."""
  # gs.cu evaluates 2.0 * i / (w - 1) - 1.0 in double (2.0 is a double literal) and rounds
  # once to float; float32 arithmetic can land one ulp away, which sub-pixel Gaussians
  # (sigma ~ 1e-4) turn into visible differences. A one-pixel axis divides by zero in gs.cu;
  # its only pixel is put at -1 instead.
  xs = 2.0 * np.arange(width, dtype=np.float64) / max(width - 1, 1) - 1.0
  ys = 2.0 * np.arange(height, dtype=np.float64) / max(height - 1, 1) - 1.0
  return jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)


def gaussian_weights(geometry, xs, ys, dmax: float):
  """Truncated unnormalised weights [..., N, P] for P = len(ys) * len(xs) pixels (row-major).

  geometry: [..., N, 5] (sigma_x, sigma_y, rho, x, y).
  """
  g = geometry.astype(jnp.float32)
  sx, sy, rho, x0, y0 = (g[..., k, None, None] for k in range(NUM_GEOMETRY))
  dx = xs[None, :] - x0  # [..., N, 1, W]
  dy = ys[:, None] - y0  # [..., N, H, 1]
  inv_sx, inv_sy = 1.0 / sx, 1.0 / sy
  quad = (inv_sx * inv_sx * dx * dx - 2.0 * rho * dx * dy * inv_sx * inv_sy
          + dy * dy * inv_sy * inv_sy)
  weight = jnp.exp(quad * (-1.0 / (1.0 - rho * rho) / 2.0))
  inside = (jnp.abs(dx) <= dmax * sx) & (jnp.abs(dy) <= dmax * sy)
  weight = jnp.where(inside, weight, 0.0)
  return weight.reshape(*weight.shape[:-2], -1)


def splat_reference(geometry, features, height: int, width: int, dmax: float):
  """Renders [B, N] Gaussians with features onto a [B, H, W, C] float32 grid.

  geometry: [B, N, 5] (sigma_x, sigma_y, rho, x, y); features: [B, N, C].
  Differentiable by autodiff (the truncation boundary has zero gradient, as in gs.cu).
  """
  xs, ys = pixel_coords(height, width)
  weights = gaussian_weights(geometry, xs, ys, dmax)  # [B, N, H*W]
  grid = jnp.einsum("bnp,bnc->bpc", weights, features.astype(jnp.float32),
                    precision="highest")
  return grid.reshape(grid.shape[0], height, width, -1)
