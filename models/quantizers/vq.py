"""Vector quantizer with a straight-through estimator (TiTok / taming layout).

The codebook is `embedding` [codebook_size, code_dim]. With `use_l2_norm`, inputs and codes
are l2-normalised before the nearest-code search and the looked-up codes are normalised too,
so decoding from ids uses unit-norm codes, as the original does.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from pallas_kernels import nearest_code


def l2_normalize(x, eps: float = 1e-12):
  # torch.nn.functional.normalize: x / max(||x||, eps).
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def codebook_stats(ids, codebook_size: int) -> dict:
  """Usage (fraction of codes hit), entropy (bits) and perplexity of a batch of ids."""
  counts = jnp.bincount(ids.reshape(-1), length=codebook_size).astype(jnp.float32)
  probs = counts / jnp.maximum(counts.sum(), 1.0)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log2(jnp.where(probs > 0, probs, 1.0)), 0.0))
  return {
      "codebook_usage": jnp.mean(counts > 0),
      "codebook_entropy_bits": entropy,
      "codebook_perplexity": 2.0 ** entropy,
  }


class VectorQuantizer(nnx.Module):

  def __init__(self, codebook_size: int, code_dim: int, *, commitment_cost: float = 0.25,
               use_l2_norm: bool = False, rngs: nnx.Rngs):
    self.codebook_size = codebook_size
    self.code_dim = code_dim
    self.commitment_cost = commitment_cost
    self.use_l2_norm = use_l2_norm
    bound = 1.0 / codebook_size  # U(-1/N, 1/N), as the original initialises it.
    self.embedding = nnx.Param(
        jax.random.uniform(rngs.params(), (codebook_size, code_dim), jnp.float32, -bound, bound),
        **axes("codes", "code_dim"))

  def codebook(self):
    codes = self.embedding[...].astype(jnp.float32)
    return l2_normalize(codes) if self.use_l2_norm else codes

  def lookup(self, ids):
    """ids [...] int -> codes [..., code_dim] float32."""
    if not jnp.issubdtype(ids.dtype, jnp.integer):
      raise TypeError(f"token ids must be integers, got {ids.dtype}")
    return jnp.take(self.codebook(), ids, axis=0)

  def __call__(self, z):
    """z [..., code_dim] -> (quantized z with straight-through gradient, aux dict)."""
    if z.shape[-1] != self.code_dim:
      raise ValueError(f"expected code_dim {self.code_dim} on the last axis, got {z.shape}")
    z = features = z.astype(jnp.float32)
    if self.use_l2_norm:
      z = l2_normalize(z)
    flat = z.reshape(-1, self.code_dim)
    codebook = self.codebook()
    ids = nearest_code(flat, codebook, metric="l2")[0].reshape(z.shape[:-1])
    z_q = jnp.take(codebook, ids, axis=0)
    commitment = self.commitment_cost * jnp.mean((jax.lax.stop_gradient(z_q) - z) ** 2)
    codebook_loss = jnp.mean((z_q - jax.lax.stop_gradient(z)) ** 2)
    z_st = z + jax.lax.stop_gradient(z_q - z)
    aux = {
        "ids": ids,
        "features": features,  # before l2-normalisation, for codebook re-anchoring
        "quantizer_loss": commitment + codebook_loss,
        "commitment_loss": commitment,
        "codebook_loss": codebook_loss,
        **codebook_stats(ids, self.codebook_size),
    }
    return z_st, aux
