"""Padding the splat operands to whole tiles, in the layouts the kernels read.

Gaussians: [B, Npad, 8] parameters (padding ones far away, sigma 1, rho 0) and features
[B, Npad, C] (padding ones zero). Pixels: a [2, Ppad] row of (x, y) coordinates, row-major
over the grid, padding pixels far away. The grid comes back as [B, C, Ppad] (pixels on the
lane axis, so TPU stores are lane-dense whatever C is).
"""
import jax.numpy as jnp

from pallas_kernels.gaussian_splat.reference import pixel_coords
from pallas_kernels.gaussian_splat.tiles import FAR_AWAY, PARAM_LANES


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def pack_gaussians(geometry, features, num_padded: int):
  b, n, _ = geometry.shape
  params = jnp.zeros((b, num_padded, PARAM_LANES), jnp.float32)
  params = params.at[:, :, 0:2].set(1.0).at[:, :, 3:5].set(FAR_AWAY)
  params = params.at[:, :n, :5].set(geometry.astype(jnp.float32))
  feats = jnp.zeros((b, num_padded, features.shape[-1]), jnp.float32)
  feats = feats.at[:, :n].set(features.astype(jnp.float32))
  return params, feats


def pixel_row(height: int, width: int, num_padded: int):
  xs, ys = pixel_coords(height, width)
  coords = jnp.stack([jnp.tile(xs, height), jnp.repeat(ys, width)])  # [2, H*W]
  return jnp.pad(coords, ((0, 0), (0, num_padded - height * width)), constant_values=FAR_AWAY)


def unpack_grid(grid, height: int, width: int):
  """[B, C, Ppad] -> [B, H, W, C]."""
  b, c, _ = grid.shape
  return grid[:, :, :height * width].reshape(b, c, height, width).transpose(0, 2, 3, 1)


def pack_grid(grid_nhwc, num_padded: int):
  """[B, H, W, C] -> [B, C, Ppad] (zeros in the padding)."""
  b, h, w, c = grid_nhwc.shape
  flat = grid_nhwc.astype(jnp.float32).transpose(0, 3, 1, 2).reshape(b, c, h * w)
  return jnp.pad(flat, ((0, 0), (0, 0), (0, num_padded - h * w)))
