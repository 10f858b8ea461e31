"""Multi-scale residual quantization (VAR's next-scale order) on a token axis.

Tokens z [B, N, D] are quantized coarse to fine: scale k sees the residual left by the scales
before it, area-averaged down to n_k tokens (n_k must divide N and grow with k), takes each
token's nearest code (float32, through the nearest-code kernel), and adds the codes, linearly
upsampled back to N tokens, to the reconstruction. The ids of all scales together are the
tokenization; any prefix of scales decodes to a coarser version of the same latent, which
scale dropout (`keep`) trains for. Codebooks are shared by every scale or one per scale.

The loss follows VAR: per scale, commitment * |sg(z_hat_k) - z|^2 + |z_hat_k - sg(z)|^2 on the
running reconstruction z_hat_k, averaged over scales; the output is straight-through.
Usable by any token model (images, audio, 3D).
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from models.quantizers.vq import codebook_stats
from pallas_kernels import nearest_code


def check_scales(scales, num_tokens: int | None = None) -> tuple[int, ...]:
  scales = tuple(int(s) for s in scales)
  if not scales or any(s <= 0 for s in scales):
    raise ValueError(f"scales must be positive token counts; got {scales}")
  if any(b <= a for a, b in zip(scales, scales[1:])):
    raise ValueError(f"scales must grow from coarse to fine; got {scales}")
  if num_tokens is not None and any(num_tokens % s for s in scales):
    raise ValueError(f"every scale must divide the {num_tokens} tokens; got {scales}")
  return scales


def downsample(x, n: int):
  """Area average [B, N, D] -> [B, n, D] (n divides N)."""
  b, length, d = x.shape
  return x if n == length else x.reshape(b, n, length // n, d).mean(axis=2)


def upsample(x, length: int):
  """Linear interpolation [B, n, D] -> [B, N, D] (half-pixel centres, edges clamped)."""
  b, n, d = x.shape
  return x if n == length else jax.image.resize(x, (b, length, d), "linear", antialias=False)


class MultiScaleResidualVQ(nnx.Module):

  def __init__(self, scales, codebook_size: int, code_dim: int, *, shared_codebook: bool = True,
               commitment_cost: float = 0.25, rngs: nnx.Rngs):
    self.scales = check_scales(scales)
    self.codebook_size, self.code_dim = codebook_size, code_dim
    self.shared_codebook, self.commitment_cost = shared_codebook, commitment_cost
    bound = 1.0 / codebook_size
    self.codebooks = nnx.List([
        nnx.Param(jax.random.uniform(rngs.params(), (codebook_size, code_dim), jnp.float32,
                                     -bound, bound), **axes("codes", "code_dim"))
        for _ in range(1 if shared_codebook else len(self.scales))])

  @property
  def bits(self) -> float:
    """Bits of one full tokenization: sum over scales of n_k * log2(codebook size)."""
    return sum(self.scales) * math.log2(self.codebook_size)

  def codebook(self, k: int):
    return self.codebooks[0 if self.shared_codebook else k][...].astype(jnp.float32)

  def lookup(self, ids, *, num_tokens: int | None = None):
    """Per-scale ids (a prefix of the scales is fine) -> the reconstruction [B, N, D]."""
    if not ids or len(ids) > len(self.scales):
      raise ValueError(f"expected ids for 1..{len(self.scales)} scales; got {len(ids)}")
    num_tokens = num_tokens or self.scales[-1]
    out = 0.0
    for k, (n, idx) in enumerate(zip(self.scales, ids)):
      if idx.ndim != 2 or idx.shape[1] != n:
        raise ValueError(f"scale {k} ids must be [B, {n}]; got shape {idx.shape}")
      if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"token ids must be integers, got {idx.dtype}")
      out = out + upsample(jnp.take(self.codebook(k), idx, axis=0), num_tokens)
    return out

  def __call__(self, z, *, keep=None):
    """z [B, N, D] -> (straight-through reconstruction, aux with "ids": one [B, n_k] per scale).

    keep: optional [B] int, how many scales each example keeps (scale dropout); the residual
    still runs through every scale, dropped ones only stop adding to the output and losses.
    """
    b, num_tokens, d = z.shape
    if d != self.code_dim:
      raise ValueError(f"expected code_dim {self.code_dim} on the last axis, got {z.shape}")
    check_scales(self.scales, num_tokens)
    z = z.astype(jnp.float32)
    keep = jnp.full((b,), len(self.scales), jnp.int32) if keep is None else keep
    residual, z_hat = z, jnp.zeros_like(z)
    ids, loss, kept_loss = [], 0.0, 0.0
    for k, n in enumerate(self.scales):
      codebook = self.codebook(k)
      coarse = downsample(residual, n)
      idx = nearest_code(coarse.reshape(-1, d), codebook, metric="l2")[0].reshape(b, n)
      up = upsample(jnp.take(codebook, idx, axis=0), num_tokens)
      on = (k < keep).astype(jnp.float32)[:, None, None]
      z_hat = z_hat + on * up
      residual = residual - up
      per_example = (self.commitment_cost
                     * jnp.mean((jax.lax.stop_gradient(z_hat) - z) ** 2, axis=(1, 2))
                     + jnp.mean((z_hat - jax.lax.stop_gradient(z)) ** 2, axis=(1, 2)))
      loss = loss + per_example
      kept_loss = kept_loss + on[:, 0, 0]
      ids.append(idx)
    loss = jnp.mean(loss / jnp.maximum(kept_loss, 1.0))
    z_st = z + jax.lax.stop_gradient(z_hat - z)
    stats = codebook_stats(jnp.concatenate(ids, axis=1), self.codebook_size)
    return z_st, {"ids": tuple(ids), "quantizer_loss": loss, **stats}
