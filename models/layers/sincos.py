"""Fixed sine-cosine position embeddings (MAE's layout, as LARP builds them), in numpy.

Computed in float64 and cast to float32 once, as the originals do, so the constants agree
with their PyTorch buffers bit for bit.
"""
import numpy as np


def sincos_1d(dim: int, positions, base: float = 10000.0) -> np.ndarray:
  """[M] positions -> [M, dim]: sin of every frequency, then cos."""
  if dim % 2:
    raise ValueError(f"a sin-cos embedding needs an even width, got {dim}")
  omega = 1.0 / base ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
  angles = np.outer(np.asarray(positions).reshape(-1), omega)
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid_size: int) -> np.ndarray:
  """[grid_size**2, dim], row-major over (h, w). Half the width encodes the column index and
  half the row index: MAE's meshgrid puts w first, and LARP keeps that order."""
  coords = np.arange(grid_size, dtype=np.float32)
  cols, rows = np.meshgrid(coords, coords)
  return np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)


def sincos_3d(dim: int, grid_size: int, frames: int) -> np.ndarray:
  """[frames * grid_size**2, dim] over (t, h, w): the 2-D embedding plus a 1-D one in time
  over the full width (LARP's get_3d_sincos_pos_embed)."""
  spatial = sincos_2d(dim, grid_size).reshape(1, grid_size * grid_size, dim)
  temporal = sincos_1d(dim, np.arange(frames, dtype=np.float32)).reshape(frames, 1, dim)
  return (spatial + temporal).reshape(-1, dim).astype(np.float32)
