"""GPSToken's resolution-aware GroupNorm (`_NormalizeNP` in xtudbxk/GPSToken models/vqvae.py).

Decoding an image of n x n 256-pixel tiles in one pass, GPSToken takes the GroupNorm statistics
of each tile, upsamples the n x n grid of means and standard deviations bicubically (torch
`interpolate(mode="bicubic")`, align_corners=False, A = -0.75) to the full resolution, and
normalises every pixel with its own interpolated statistics. With one tile it is a GroupNorm,
except for the official quirk kept here: (x - mean) / (std + eps), not / sqrt(var + eps).
"""
import functools

import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes

EPS = 1e-6
BICUBIC_A = -0.75


def _cubic(t):
  t = np.abs(t)
  a = BICUBIC_A
  return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                  np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


@functools.lru_cache(maxsize=None)
def bicubic_matrix(src: int, dst: int) -> np.ndarray:
  """[dst, src] float32: torch's bicubic upsampling along one axis (borders clamped)."""
  out = np.zeros((dst, src), np.float64)
  scale = src / dst
  for i in range(dst):
    x = (i + 0.5) * scale - 0.5
    x0 = int(np.floor(x))
    t = x - x0
    for k, w in zip(range(-1, 3), _cubic(np.array([1 + t, t, 1 - t, 2 - t]))):
      out[i, min(max(x0 + k, 0), src - 1)] += w
  return out.astype(np.float32)


def to_tiles(x, n: int):
  """[B, H, W, C] -> [B * n * n, H / n, W / n, C], tiles row-major within each image."""
  b, h, w, c = x.shape
  x = x.reshape(b, n, h // n, n, w // n, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b * n * n, h // n, w // n, c)


def from_tiles(x, n: int):
  """Inverse of `to_tiles`."""
  bt, h, w, c = x.shape
  x = x.reshape(bt // (n * n), n, n, h, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(bt // (n * n), n * h, n * w, c)


class TiledGroupNorm(nnx.Module):
  """GroupNorm with per-tile statistics interpolated over the canvas (module docstring)."""

  def __init__(self, channels: int, groups: int = 32, *, rngs: nnx.Rngs):
    del rngs
    self.groups = groups
    self.scale = nnx.Param(jnp.ones((channels,), jnp.float32), **axes("norm"))
    self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32), **axes("norm"))

  def __call__(self, x, tiles: int = 1):
    b, h, w, c = x.shape
    dtype = x.dtype
    g = self.groups
    z = x.astype(jnp.float32).reshape(b, tiles, h // tiles, tiles, w // tiles, g, c // g)
    mean = jnp.mean(z, axis=(2, 4, 6))  # [B, n, n, G]
    std = jnp.sqrt(jnp.mean(jnp.square(z - mean[:, :, None, :, None, :, None]),
                            axis=(2, 4, 6)))
    if tiles == 1:
      mean_map, std_map = mean[:, :, None, :, None, :, None], std[:, :, None, :, None, :, None]
      z = (z - mean_map) / (std_map + EPS)
    else:
      my, mx = bicubic_matrix(tiles, h), bicubic_matrix(tiles, w)
      up = lambda s: jnp.einsum("yi,xj,bijg->byxg", my, mx, s, precision="highest")
      zf = z.reshape(b, h, w, g, c // g)
      z = (zf - up(mean)[..., None]) / (up(std)[..., None] + EPS)
    return (z.reshape(b, h, w, c) * self.scale.get_value() + self.bias.get_value()).astype(dtype)
