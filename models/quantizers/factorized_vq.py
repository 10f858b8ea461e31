"""DAC's (and SNAC's) codebook level: factorized, l2-normalized codes (Improved VQGAN).

The residual [B, T, D] is projected to a few dimensions (`in_proj`, a weight-normed 1x1 conv),
the nearest code is found by cosine similarity (both sides l2-normalized), and the *raw* code
vector, not its normalized version, is projected back (`out_proj`) - as the released models do,
in training and when decoding from ids. With `stride` > 1 (SNAC) the level quantizes the
residual average-pooled by `stride` in time and repeats its codes back to the full rate.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.audio_conv import Conv1d
from models.layers.axes import axes
from models.quantizers.vq import codebook_stats, l2_normalize
from pallas_kernels import nearest_code


class FactorizedVQ(nnx.Module):

  def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, *, stride: int = 1,
               rngs: nnx.Rngs):
    self.input_dim, self.codebook_size, self.codebook_dim = input_dim, codebook_size, codebook_dim
    self.stride = stride
    self.in_proj = Conv1d(input_dim, codebook_dim, 1, rngs=rngs)
    self.out_proj = Conv1d(codebook_dim, input_dim, 1, rngs=rngs)
    self.codebook = nnx.Param(  # nn.Embedding's N(0, 1) init
        jax.random.normal(rngs.params(), (codebook_size, codebook_dim), jnp.float32),
        **axes("codes", "code_dim"))

  def _pool(self, z):
    if self.stride == 1:
      return z
    if z.shape[1] % self.stride:
      raise ValueError(f"{z.shape[1]} frames do not split into windows of stride {self.stride}; "
                       "pad the audio to a multiple of the model's hop length")
    return z.reshape(z.shape[0], -1, self.stride, z.shape[2]).mean(axis=2)

  def _unpool(self, z):
    return z if self.stride == 1 else jnp.repeat(z, self.stride, axis=1)

  def search(self, z_e):
    """z_e [B, T, codebook_dim] -> ids [B, T], nearest by cosine similarity."""
    flat = l2_normalize(z_e.reshape(-1, self.codebook_dim))
    ids = nearest_code(flat, l2_normalize(self.codebook[...]), metric="l2")[0]
    return ids.reshape(z_e.shape[:-1])

  def lookup(self, ids):
    """ids [B, T_l] -> this level's contribution [B, T_l * stride, input_dim]."""
    return self._unpool(self.out_proj(jnp.take(self.codebook[...], ids, axis=0)))

  def __call__(self, z, *, train: bool = False, rngs=None):
    del train, rngs  # deterministic: no EMA state, no sampling
    z_e = self.in_proj(self._pool(z.astype(jnp.float32)))
    ids = self.search(z_e)
    z_q = jnp.take(self.codebook[...], ids, axis=0)
    commitment = jnp.mean((z_e - jax.lax.stop_gradient(z_q)) ** 2, axis=(1, 2))
    codebook = jnp.mean((z_q - jax.lax.stop_gradient(z_e)) ** 2, axis=(1, 2))
    z_st = z_e + jax.lax.stop_gradient(z_q - z_e)
    aux = {"ids": ids, "commitment_loss": commitment, "codebook_loss": codebook,
           "latents": z_e, **codebook_stats(ids, self.codebook_size)}
    return self._unpool(self.out_proj(z_st)), aux
