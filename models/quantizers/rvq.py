"""Residual vector quantization (SoundStream): level l quantizes what levels < l left over.

A level is any module with
  `level(residual [B, T, D], train=bool, rngs=nnx.Rngs | None)
       -> (z_q [B, T, D], {"ids": [B, T_l], "commitment_loss": [B], "codebook_loss": [B], ...})`
  `level.lookup(ids [B, T_l]) -> z_q [B, T, D]`
and optional `stride` (SNAC's multi-scale levels see the residual pooled by `stride` in time).
Quantizer dropout (SoundStream, DAC): in training a fraction `dropout` of the examples keep
a random number of levels, 1..L, so that one model serves every bitrate. As in DAC the residual
still flows through all levels; dropped levels only stop adding to the output and the losses.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx


def bits_per_second(codebook_sizes, frame_rates) -> float:
  """Sum over levels of log2(codebook size) * tokens per second of that level."""
  return float(sum(math.log2(k) * r for k, r in zip(codebook_sizes, frame_rates, strict=True)))


def levels_kept(batch: int, num_levels: int, dropout: float, rng):
  """[B] int32: how many levels each example keeps. The first round(B * dropout) examples draw
  1..L uniformly, the rest keep all L (DAC's rule, which takes the leading int(B * dropout))."""
  drawn = jax.random.randint(rng, (batch,), 1, num_levels + 1)
  return jnp.where(jnp.arange(batch) < int(batch * dropout), drawn, num_levels).astype(jnp.int32)


class ResidualVQ(nnx.Module):

  def __init__(self, levels, *, dropout: float = 0.0):
    if not levels:
      raise ValueError("a residual quantizer needs at least one level")
    if not 0.0 <= dropout <= 1.0:
      raise ValueError(f"quantizer dropout must be in [0, 1], got {dropout}")
    self.levels = nnx.List(levels)
    self.dropout = dropout

  @property
  def num_levels(self) -> int:
    return len(self.levels)

  @property
  def strides(self) -> tuple[int, ...]:
    return tuple(getattr(level, "stride", 1) for level in self.levels)

  def _check_num_levels(self, num_levels):
    num_levels = self.num_levels if num_levels is None else int(num_levels)
    if not 1 <= num_levels <= self.num_levels:
      raise ValueError(f"num_levels must be in 1..{self.num_levels}, got {num_levels}")
    return num_levels

  def _stack(self, per_level):
    """ids of equal-rate levels stack to [B, T, L]; multi-scale ids stay a tuple per level."""
    if len(set(self.strides)) == 1:
      return jnp.stack(per_level, axis=-1)
    return tuple(per_level)

  def __call__(self, z, *, num_levels=None, train: bool = False, rngs: nnx.Rngs | None = None):
    """z [B, T, D] -> (quantized z [B, T, D], aux).

    aux: "ids" ([B, T, L] or a tuple of [B, T_l]), "commitment_loss" and "codebook_loss"
    (means over the batch of the kept levels' sums), "levels_kept" [B].
    """
    num_levels = self._check_num_levels(num_levels)
    z = z.astype(jnp.float32)
    batch = z.shape[0]
    if train and self.dropout > 0:
      if rngs is None:
        raise ValueError("quantizer dropout in training needs rngs with a 'sample' stream")
      kept = levels_kept(batch, num_levels, self.dropout, rngs.sample())
    else:
      kept = jnp.full((batch,), num_levels, jnp.int32)
    residual, z_q = z, jnp.zeros_like(z)
    commitment = codebook = jnp.zeros((batch,), jnp.float32)
    ids, level_aux = [], []
    for i, level in enumerate(self.levels[:num_levels]):
      z_i, aux = level(residual, train=train, rngs=rngs)
      keep = (i < kept).astype(jnp.float32)
      z_q = z_q + z_i * keep[:, None, None]
      residual = residual - z_i
      commitment = commitment + aux["commitment_loss"] * keep
      codebook = codebook + aux["codebook_loss"] * keep
      ids.append(aux["ids"])
      level_aux.append(aux)
    return z_q, {
        "ids": self._stack(ids),
        "commitment_loss": jnp.mean(commitment),
        "codebook_loss": jnp.mean(codebook),
        "levels_kept": kept,
        "level_aux": level_aux,
    }

  def lookup(self, ids):
    """ids ([B, T, L'] or a tuple of L' arrays) -> the sum of the first L' levels' codes."""
    per_level = ids if isinstance(ids, (tuple, list)) else [ids[..., i] for i in range(ids.shape[-1])]
    self._check_num_levels(len(per_level))
    z_q = None
    for level, level_ids in zip(self.levels, per_level):
      if not jnp.issubdtype(jnp.asarray(level_ids).dtype, jnp.integer):
        raise TypeError(f"token ids must be integers, got {jnp.asarray(level_ids).dtype}")
      z_i = level.lookup(level_ids)
      z_q = z_i if z_q is None else z_q + z_i
    return z_q
