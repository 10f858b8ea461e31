"""3DShape2VecSet's Fourier point embedding.

Each coordinate is projected on 2^k * pi for k < hidden/6 (a block-diagonal [3, hidden/2]
basis: x's frequencies, then y's, then z's); [sin, cos, xyz] goes through one Linear.
"""
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes


def fourier_basis(hidden_dim: int = 48) -> np.ndarray:
  """The fixed [3, hidden_dim / 2] basis (the official `point_embed.basis` buffer)."""
  if hidden_dim % 6:
    raise ValueError(f"point-embedding hidden_dim {hidden_dim} must be a multiple of 6")
  freqs = (2.0 ** np.arange(hidden_dim // 6, dtype=np.float32)) * np.float32(np.pi)
  basis = np.zeros((3, hidden_dim // 2), np.float32)
  for axis in range(3):
    basis[axis, axis * freqs.size:(axis + 1) * freqs.size] = freqs
  return basis


class PointEmbed(nnx.Module):
  """[B, N, 3] -> [B, N, dim]."""

  def __init__(self, dim: int, *, hidden_dim: int = 48, rngs: nnx.Rngs, dtype=None):
    self.hidden_dim = hidden_dim
    self.mlp = nnx.Linear(hidden_dim + 3, dim, dtype=dtype, rngs=rngs,
                          kernel_metadata=axes(None, "embed"), bias_metadata=axes("embed"))

  def __call__(self, points):
    points = points.astype(jnp.float32)
    proj = jnp.einsum("bnd,de->bne", points, fourier_basis(self.hidden_dim))
    return self.mlp(jnp.concatenate([jnp.sin(proj), jnp.cos(proj), points], axis=-1))
