"""Finite scalar quantization (Mentzer et al. 2023), as FlexTok uses it (levels [8,8,8,5,5,5]).

Each of the d channels is bounded and rounded to one of `levels[i]` values; the code is the
tuple of levels and its id the mixed-radix number sum(code_i * prod(levels[:i])), FlexTok's
`codes_to_indices` (channel 0 is the least significant digit). Per channel, with L levels:
  half_l = (L - 1) * (1 + 1e-3) / 2,  offset = 0.5 if L is even else 0
  bounded = tanh(z + atanh(offset / half_l)) * half_l - offset
  z_q = round_ste(bounded) / (L // 2)          (in [-1, 1]; even L reaches -1 .. 1 - 2/L)
Rounding uses a straight-through gradient. `drop_quant_p` (training only) leaves a whole
sample unrounded with that probability, as FlexTok's `round_ste_quant_dropout`. FlexTok's
optional training-time token corruption is not implemented. No parameters; float32 math.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

BOUND_EPS = 1e-3


class FSQ(nnx.Module):

  def __init__(self, levels, *, drop_quant_p: float = 0.0):
    levels = tuple(int(level) for level in levels)
    if not levels or min(levels) < 2:
      raise ValueError(f"FSQ levels must be integers >= 2, got {levels}")
    if not 0.0 <= drop_quant_p < 1.0:
      raise ValueError(f"drop_quant_p must be in [0, 1), got {drop_quant_p}")
    self.levels = levels
    self.drop_quant_p = drop_quant_p
    self.dim = len(levels)
    self.codebook_size = int(np.prod(levels))
    if self.codebook_size > np.iinfo(np.int32).max:
      raise ValueError(f"{self.codebook_size} codes do not fit int32 ids")

  def _constants(self):
    levels = np.asarray(self.levels, np.float32)
    half_width = np.asarray([level // 2 for level in self.levels], np.float32)
    basis = np.cumprod([1] + list(self.levels[:-1])).astype(np.int32)
    return levels, half_width, basis

  def bound(self, z):
    levels, _, _ = self._constants()
    half_l = (levels - 1.0) * np.float32(1.0 + BOUND_EPS) / 2.0
    offset = np.where(np.asarray(self.levels) % 2 == 0, 0.5, 0.0).astype(np.float32)
    shift = np.arctanh(offset / half_l).astype(np.float32)
    return jnp.tanh(z + shift) * half_l - offset

  def codes_to_ids(self, codes):
    """Normalised codes [..., d] in [-1, 1] -> int32 ids [...]."""
    _, half_width, basis = self._constants()
    digits = jnp.round(codes * half_width + half_width).astype(jnp.int32)
    return jnp.sum(digits * basis, axis=-1)

  def lookup(self, ids):
    """int ids [...] -> normalised codes [..., d] float32."""
    if not jnp.issubdtype(jnp.asarray(ids).dtype, jnp.integer):
      raise TypeError(f"token ids must be integers, got {jnp.asarray(ids).dtype}")
    levels, half_width, basis = self._constants()
    digits = (ids[..., None] // basis) % levels.astype(np.int32)
    return (digits.astype(jnp.float32) - half_width) / half_width

  def __call__(self, z, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """z [..., d] -> (quantized z with straight-through gradient, {"ids": [...]})."""
    if z.shape[-1] != self.dim:
      raise ValueError(f"expected {self.dim} channels (one per FSQ level) on the last axis, "
                       f"got shape {z.shape}")
    _, half_width, _ = self._constants()
    bounded = self.bound(z.astype(jnp.float32))
    rounded = jnp.round(bounded)
    if train and self.drop_quant_p > 0.0:
      if rngs is None:
        raise ValueError("drop_quant_p needs rngs with a 'sample' stream in training")
      keep = jax.random.bernoulli(rngs.sample(), self.drop_quant_p, z.shape[:1])
      rounded = jnp.where(keep.reshape((-1,) + (1,) * (z.ndim - 1)), bounded, rounded)
    z_q = (bounded + jax.lax.stop_gradient(rounded - bounded)) / half_width
    return z_q, {"ids": self.codes_to_ids(z_q)}
