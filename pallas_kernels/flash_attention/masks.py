"""How attention masks reach the kernels.

Callers pass one boolean `mask` broadcastable to [B, H, S, T] (True keeps a key), as for
`dot_product_attention`. The kernels see it in one of two forms, chosen from its shape:

  * key padding, a mask of shape [B or 1, 1, 1, T] (flexible token counts): an int32 row
    per batch element, [Bm, T_pad]; a kernel reads only `block_k` values of it per key block.
  * dense, anything else (e.g. an [S, T] block-diagonal temporal mask for video): int8
    [Bm, Hm, S_pad, T_pad], where Bm and Hm stay 1 when the mask does not vary over batch or
    heads; a kernel reads one tile of it per (query block, key block).

Both come with a per-block table saying whether a (query block, key block) tile keeps any
key; the kernels skip the compute of the tiles it marks dead and, through `tile_schedule`,
their DMAs, so block-sparse masks cost less compute and memory traffic. The table sits in
TPU SMEM (scalar prefetch): Bm * Hm * nq * nk int32 entries, small when the mask is shared
across batch and heads, but a per-batch, per-head mask on long sequences may not fit.
Padded keys are always masked and padded queries are dropped by the caller.
"""
import jax
import jax.numpy as jnp


def key_padding_mask(lengths, num_keys: int):
  """[B, 1, 1, T] boolean keeping the first `lengths[b]` keys of batch element b."""
  lengths = jnp.asarray(lengths)
  return (jnp.arange(num_keys) < lengths[:, None])[:, None, None, :]


def as_4d_mask(mask, batch: int, heads: int, seq_q: int, seq_k: int):
  """Checks `mask` is boolean and broadcastable to [B, H, S, T]; returns it with rank 4."""
  mask = jnp.asarray(mask)
  if mask.dtype != jnp.bool_:
    raise TypeError(f"mask must be boolean (True keeps a key), got {mask.dtype}")
  if mask.ndim > 4:
    raise ValueError(f"mask must have rank <= 4, got shape {mask.shape}")
  mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
  target = (batch, heads, seq_q, seq_k)
  if any(m not in (1, t) for m, t in zip(mask.shape, target)):
    raise ValueError(f"mask shape {mask.shape} does not broadcast to [B, H, S, T] = {target}")
  return mask


def is_key_padding(mask4) -> bool:
  """True when the mask only depends on (batch, key): the cheap kernel path."""
  return mask4.shape[1] == 1 and mask4.shape[2] == 1


def key_padding_rows(mask4, seq_k: int, seq_k_padded: int):
  """[Bm, T_pad] int32 from a [Bm, 1, 1, T or 1] mask; padded keys are 0 (dropped)."""
  rows = jnp.broadcast_to(mask4[:, 0, 0, :], (mask4.shape[0], seq_k))
  return _pad_to(rows, 1, seq_k_padded).astype(jnp.int32)


def dense_tiles(mask4, seq_q: int, seq_q_padded: int, seq_k: int, seq_k_padded: int):
  """[Bm, Hm, S_pad, T_pad] int8 from a rank-4 mask; padding is 0 (masked)."""
  keep = jnp.broadcast_to(mask4, mask4.shape[:2] + (seq_q, seq_k))
  keep = _pad_to(_pad_to(keep, 2, seq_q_padded), 3, seq_k_padded)
  return keep.astype(jnp.int8)


def block_live_table(keep, block_q: int, block_k: int):
  """int32 [Bm, Hm, nq, nk]: 1 where tile (query block, key block) keeps some key.

  `keep` is [Bm, Hm, Sq, T_pad] with Sq either a multiple of `block_q` or 1 (key padding,
  then the table has nq = 1).
  """
  bm, hm, sq, tk = keep.shape
  nq = 1 if sq == 1 else sq // block_q
  tiles = keep.reshape(bm, hm, nq, sq // nq, tk // block_k, block_k)
  return jnp.any(tiles != 0, axis=(3, 5)).astype(jnp.int32)


def tile_schedule(live):
  """Encodes, along the last axis (the grid's inner, sequential one), what each step does.

  Entry = 2 * block to fetch + (1 if the tile is live). A live tile fetches its own block; a
  dead one repeats the last live block before it (block 0 if none), so that the pipeline
  sees an unchanged block index and skips the copy.
  """
  steps = jnp.arange(live.shape[-1], dtype=jnp.int32)
  last_live = jax.lax.cummax(jnp.where(live != 0, steps, -1), axis=live.ndim - 1)
  return (2 * jnp.maximum(last_live, 0) + (live != 0)).astype(jnp.int32)


def _pad_to(x, axis: int, size: int):
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, pad)
