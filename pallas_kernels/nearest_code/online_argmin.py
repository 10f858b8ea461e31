"""The running min/argmin across codebook tiles, written with ops every Pallas backend lowers.

Within a tile: m = min over codes, then the lowest code id whose score equals m (Mosaic GPU has
no argmin lowering, and this also fixes the tie rule). Across tiles the running best is replaced
only on a strictly smaller score, so among equal scores the earlier (lower) id stays.
"""
import jax
import jax.numpy as jnp

# Larger than any code id; never a real id because K < 2**31 - 1.
NO_ID = jnp.iinfo(jnp.int32).max


def tile_min(tile_scores, code_ids, *, keepdims=True):
  """tile_scores [T, C] float32, code_ids [T, C] int32 (padded codes already scored +inf).

  Args:
    tile_scores: [T, C] float32 scores, padded codes already +inf.
    code_ids: [T, C] int32 absolute code ids.
    keepdims: [T, 1] results (TPU keeps 2D vectors) or [T] (Mosaic GPU row vectors, broadcast
      back explicitly because it lowers no implicit broadcasting of reduced arrays).

  Returns:
    (min score, lowest id reaching it), each [T, 1] or [T].
  """
  best = jnp.min(tile_scores, axis=1, keepdims=keepdims)
  wide_best = best if keepdims else jax.lax.broadcast_in_dim(best, tile_scores.shape, [0])
  ids = jnp.min(jnp.where(tile_scores == wide_best, code_ids, NO_ID), axis=1, keepdims=keepdims)
  return best, ids


def merge(running_best, running_ids, tile_best, tile_ids):
  """Keeps the running entry unless the tile's is strictly smaller."""
  better = tile_best < running_best
  return jnp.where(better, tile_best, running_best), jnp.where(better, tile_ids, running_ids)
