"""Flash attention for TPU: Pallas (Mosaic) forward and backward kernels.

Forward: grid (B, H, query blocks, key blocks), the key-block axis last and "arbitrary"; a
running max, running sum and output accumulator live in VMEM scratch across it (online
softmax, float32), and the per-row logsumexp is saved for the backward.

Backward (two kernels, so neither needs atomics or a cross-block reduction):
  * dq: grid (B, H, query blocks, key blocks), accumulates dq over key blocks.
  * dk, dv: grid (B, H, key blocks, query blocks), accumulates both over query blocks, working
    on transposed [key, query] tiles so every matmul is a plain or "A @ B^T" product.
Both recompute the probabilities from q, k and the saved logsumexp; delta = rowsum(dO * O) is
computed by XLA beforehand.

Sequences are padded to whole blocks: padded keys are masked, padded query rows are sliced
off (their cotangent is zero, so they add nothing to dk, dv). Tiles that keep no key (causal
upper triangle, dead tiles of a block mask, all-padding key blocks) skip their compute; for
causal attention their DMAs are skipped too (the index maps repeat the last live block).

Validated on CPU only, in Pallas TPU interpret mode against `attention_reference`
(tests/test_kernels_flash_attention.py), and lowered to Mosaic with `jax.export(...,
platforms=["tpu"])`; it has not run on TPU hardware.
"""
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.flash_attention import masks

# Finite, so that exp(m_prev - m_next) never evaluates inf - inf on rows with no key yet.
MASKED_LOGIT = -1e30
# Logsumexp stored for rows with no key at all: exp(s - it) is 0 for any logit s.
EMPTY_ROW_LSE = 1e30
# Running max and sum are kept lane-replicated, [block, 128], the native TPU vreg width.
LANES = 128
DEFAULT_BLOCK = 128
# Block sizes are multiples of 32 so that f32, bf16 and int8 (mask) tiles all fit the TPU
# (8, 128), (16, 128), (32, 128) layouts; a sequence shorter than one block is one block.
BLOCK_MULTIPLE = 32

_SQ = pl.squeezed


@dataclasses.dataclass(frozen=True)
class KernelConfig:
  """Static facts the kernels specialise on."""
  causal: bool
  scale: float
  block_q: int
  block_k: int
  seq_k: int  # unpadded T, to mask the padded keys when there is no mask array
  num_q_blocks: int
  num_k_blocks: int
  mask_kind: str  # "none", "key" (key padding rows) or "dense" (tiles)
  mask_batch: int  # Bm: 1 when the mask is shared across the batch
  mask_heads: int  # Hm: 1 when the mask is shared across heads
  table_q_blocks: int  # query-block extent of the tile tables (1 for key padding)
  interpret: Any

  def table_index(self, b, h, qi, ki, *, by_key_block):
    """Flat index of tile (qi, ki) in the tile table of the grid's order.

    Forward and dq tables are [Bm, Hm, nq, nk] (key blocks inner); the dk/dv table is
    [Bm, Hm, nk, nq] (query blocks inner).
    """
    b = b if self.mask_batch > 1 else 0
    h = h if self.mask_heads > 1 else 0
    qi = qi if self.table_q_blocks > 1 else 0
    if by_key_block:
      return ((b * self.mask_heads + h) * self.num_k_blocks + ki) * self.table_q_blocks + qi
    return ((b * self.mask_heads + h) * self.table_q_blocks + qi) * self.num_k_blocks + ki


def block_size(length: int, preferred: int = DEFAULT_BLOCK) -> int:
  """The block for a sequence: `preferred`, or the whole (rounded-up) sequence if shorter."""
  return min(preferred, pl.cdiv(length, BLOCK_MULTIPLE) * BLOCK_MULTIPLE)


def _dot(a, b, *, transpose_b=False):
  """a @ b (or a @ b.T) with float32 accumulation; full precision for float32 inputs."""
  contract = ((1,), (1,)) if transpose_b else ((1,), (0,))
  precision = jax.lax.Precision.HIGHEST if a.dtype == jnp.float32 else None
  return jax.lax.dot_general(a, b, (contract, ((), ())), precision=precision,
                             preferred_element_type=jnp.float32)


# Dead tiles (no kept key) skip their compute, and their DMAs where the block index can repeat
# the previous step's: Pallas copies a block only when its index changes.
# Index arithmetic uses lax.div / lax.rem (operands are non-negative): `//` and `%` lower
# through `sign`, whose Mosaic lowering queries the TPU, so `jax.export` on CPU could not
# check them.


def _schedule_entry(cfg, table_ref, b, h, qi, ki, by_key_block):
  """(live, block to fetch if dead) from the tile schedule (see masks.tile_schedule)."""
  entry = table_ref[cfg.table_index(b, h, qi, ki, by_key_block=by_key_block)]
  return jax.lax.rem(entry, 2) == 1, jax.lax.div(entry, 2)


def _fetched_k_block(cfg, table_ref, b, h, qi, ki):
  """Key block to DMA at step (qi, ki) of the forward and dq grids."""
  block = ki
  if cfg.mask_kind != "none":
    live, dead_block = _schedule_entry(cfg, table_ref, b, h, qi, ki, False)
    block = jnp.where(live, ki, dead_block)
  if cfg.causal:  # past the diagonal: the diagonal block again
    block = jnp.minimum(block, jax.lax.div(qi * cfg.block_q + cfg.block_q - 1, cfg.block_k))
  return block


def _fetched_q_block(cfg, table_ref, b, h, ki, qi):
  """Query block to DMA at step (ki, qi) of the dk/dv grid."""
  if cfg.causal:  # before the diagonal: the first live query block (tiles before are dead)
    return jnp.maximum(qi, jax.lax.div(ki * cfg.block_k, cfg.block_q))
  if cfg.mask_kind != "none":
    live, dead_block = _schedule_entry(cfg, table_ref, b, h, qi, ki, True)
    return jnp.where(live, qi, dead_block)
  return qi


def _tile_is_live(cfg, table_ref, b, h, qi, ki, *, by_key_block=False):
  """Whether tile (qi, ki) keeps any key; its compute is skipped otherwise."""
  live = True
  if cfg.mask_kind != "none":  # without a mask the table is a placeholder
    live = _schedule_entry(cfg, table_ref, b, h, qi, ki, by_key_block)[0]
  if cfg.causal:
    live = live & (ki * cfg.block_k <= qi * cfg.block_q + cfg.block_q - 1)
  return live


def _tile_keep(cfg, qi, ki, mask_ref, *, transposed):
  """Boolean keep-mask of one tile, [block_q, block_k] ([block_k, block_q] if transposed).

  None when every key of the tile is kept.
  """
  shape = (cfg.block_k, cfg.block_q) if transposed else (cfg.block_q, cfg.block_k)
  q_axis, k_axis = (1, 0) if transposed else (0, 1)
  keep = None
  if cfg.causal or (cfg.mask_kind == "none" and cfg.seq_k % cfg.block_k):
    k_pos = ki * cfg.block_k + jax.lax.broadcasted_iota(jnp.int32, shape, k_axis)
  if cfg.causal:
    q_pos = qi * cfg.block_q + jax.lax.broadcasted_iota(jnp.int32, shape, q_axis)
    keep = q_pos >= k_pos
  if cfg.mask_kind == "none" and cfg.seq_k % cfg.block_k:
    # Without a mask array the padded keys are masked here; with one they are in the array.
    in_range = k_pos < cfg.seq_k
    keep = in_range if keep is None else keep & in_range
  if cfg.mask_kind != "none":
    tile = jnp.broadcast_to(mask_ref[...] != 0, shape)
    keep = tile if keep is None else keep & tile
  return keep


def _forward_kernel(table_ref, q_ref, k_ref, v_ref, *refs, cfg):
  mask_ref = refs[0] if cfg.mask_kind != "none" else None
  o_ref, lse_ref, max_ref, sum_ref, acc_ref = refs[-5:]
  b, h, qi, ki = (pl.program_id(axis) for axis in range(4))

  @pl.when(ki == 0)
  def _init():
    max_ref[...] = jnp.full(max_ref.shape, MASKED_LOGIT, jnp.float32)
    sum_ref[...] = jnp.zeros(sum_ref.shape, jnp.float32)
    acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

  @pl.when(_tile_is_live(cfg, table_ref, b, h, qi, ki))
  def _accumulate():
    v = v_ref[...]
    logits = _dot(q_ref[...], k_ref[...], transpose_b=True) * cfg.scale
    keep = _tile_keep(cfg, qi, ki, mask_ref, transposed=False)
    if keep is not None:
      logits = jnp.where(keep, logits, MASKED_LOGIT)
    max_prev = max_ref[...]
    max_next = jnp.maximum(max_prev, jnp.max(logits, axis=1, keepdims=True))
    rescale = jnp.exp(max_prev - max_next)
    probs = jnp.exp(logits - max_next[:, :1])
    if keep is not None:
      # A row with no kept key so far has max MASKED_LOGIT, where exp gives 1, not 0.
      probs = jnp.where(keep, probs, 0.0)
    sum_ref[...] = rescale * sum_ref[...] + jnp.sum(probs, axis=1, keepdims=True)
    max_ref[...] = max_next
    acc_ref[...] = rescale[:, :1] * acc_ref[...] + _dot(probs.astype(v.dtype), v)

  @pl.when(ki == cfg.num_k_blocks - 1)
  def _finish():
    total = sum_ref[...][:, :1]
    has_keys = total > 0
    safe_total = jnp.where(has_keys, total, 1.0)
    o_ref[...] = jnp.where(has_keys, acc_ref[...] / safe_total, 0.0).astype(o_ref.dtype)
    lse = max_ref[...][:, :1] + jnp.log(safe_total)
    lse_ref[...] = jnp.where(has_keys, lse, EMPTY_ROW_LSE)


def _dq_kernel(table_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, *refs, cfg):
  mask_ref = refs[0] if cfg.mask_kind != "none" else None
  dq_ref, acc_ref = refs[-2:]
  b, h, qi, ki = (pl.program_id(axis) for axis in range(4))

  @pl.when(ki == 0)
  def _init():
    acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

  @pl.when(_tile_is_live(cfg, table_ref, b, h, qi, ki))
  def _accumulate():
    k = k_ref[...]
    logits = _dot(q_ref[...], k, transpose_b=True) * cfg.scale
    keep = _tile_keep(cfg, qi, ki, mask_ref, transposed=False)
    if keep is not None:
      logits = jnp.where(keep, logits, MASKED_LOGIT)
    probs = jnp.exp(logits - lse_ref[...])  # masked logits and empty rows give 0
    dprobs = _dot(do_ref[...], v_ref[...], transpose_b=True)
    dlogits = probs * (dprobs - delta_ref[...])
    acc_ref[...] += _dot(dlogits.astype(k.dtype), k)

  @pl.when(ki == cfg.num_k_blocks - 1)
  def _finish():
    dq_ref[...] = (acc_ref[...] * cfg.scale).astype(dq_ref.dtype)


def _dkv_kernel(table_ref, q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, *refs, cfg):
  mask_ref = refs[0] if cfg.mask_kind != "none" else None
  dk_ref, dv_ref, dk_acc_ref, dv_acc_ref = refs[-4:]
  b, h, ki, qi = (pl.program_id(axis) for axis in range(4))

  @pl.when(qi == 0)
  def _init():
    dk_acc_ref[...] = jnp.zeros(dk_acc_ref.shape, jnp.float32)
    dv_acc_ref[...] = jnp.zeros(dv_acc_ref.shape, jnp.float32)

  @pl.when(_tile_is_live(cfg, table_ref, b, h, qi, ki, by_key_block=True))
  def _accumulate():
    q, do = q_ref[...], do_ref[...]
    # Transposed tile [block_k, block_q]; lse and delta come as rows [1, block_q].
    logits_t = _dot(k_ref[...], q, transpose_b=True) * cfg.scale
    keep_t = _tile_keep(cfg, qi, ki, mask_ref, transposed=True)
    if keep_t is not None:
      logits_t = jnp.where(keep_t, logits_t, MASKED_LOGIT)
    probs_t = jnp.exp(logits_t - lse_ref[...])
    dv_acc_ref[...] += _dot(probs_t.astype(do.dtype), do)
    dprobs_t = _dot(v_ref[...], do, transpose_b=True)
    dlogits_t = probs_t * (dprobs_t - delta_ref[...])
    dk_acc_ref[...] += _dot(dlogits_t.astype(q.dtype), q)

  @pl.when(qi == cfg.num_q_blocks - 1)
  def _finish():
    dk_ref[...] = (dk_acc_ref[...] * cfg.scale).astype(dk_ref.dtype)
    dv_ref[...] = dv_acc_ref[...].astype(dv_ref.dtype)


def _mask_spec(cfg, *, transposed):
  """BlockSpec of the mask array for a grid (b, h, i, j) = (b, h, qi, ki) or (b, h, ki, qi).

  Dead tiles fetch the same mask block as the K/V (or Q) blocks do, so their copy is skipped.
  """
  pick_b = (lambda b: b) if cfg.mask_batch > 1 else (lambda b: 0)
  pick_h = (lambda h: h) if cfg.mask_heads > 1 else (lambda h: 0)
  k_block = lambda b, h, qi, ki, t: _fetched_k_block(cfg, t, b, h, qi, ki)
  q_block = lambda b, h, ki, qi, t: _fetched_q_block(cfg, t, b, h, ki, qi)
  if cfg.mask_kind == "key":  # [Bm, 1, T_pad] rows, or [Bm, T_pad, 1] columns
    if transposed:
      return pl.BlockSpec((_SQ, cfg.block_k, 1), lambda b, h, ki, qi, t: (pick_b(b), ki, 0))
    return pl.BlockSpec((_SQ, 1, cfg.block_k),
                        lambda b, h, qi, ki, t: (pick_b(b), 0, k_block(b, h, qi, ki, t)))
  if transposed:  # [Bm, Hm, T_pad, S_pad]
    return pl.BlockSpec(
        (_SQ, _SQ, cfg.block_k, cfg.block_q),
        lambda b, h, ki, qi, t: (pick_b(b), pick_h(h), ki, q_block(b, h, ki, qi, t)))
  return pl.BlockSpec(
      (_SQ, _SQ, cfg.block_q, cfg.block_k),
      lambda b, h, qi, ki, t: (pick_b(b), pick_h(h), qi, k_block(b, h, qi, ki, t)))


def _mask_operand(cfg, mask_array, *, transposed):
  """The mask array in the layout `_mask_spec` expects (empty when there is none)."""
  if cfg.mask_kind == "none":
    return ()
  if cfg.mask_kind == "key":
    return (mask_array[:, :, None] if transposed else mask_array[:, None, :],)
  return (jnp.swapaxes(mask_array, 2, 3) if transposed else mask_array,)


def _compiler_params():
  return pltpu.CompilerParams(
      dimension_semantics=("parallel", "parallel", "parallel", "arbitrary"))


def _forward(cfg, q, k, v, table, mask_array):
  batch, heads, seq_q, dim = q.shape
  grid = (batch, heads, cfg.num_q_blocks, cfg.num_k_blocks)
  q_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_q, dim), lambda b, h, qi, ki, t: (b, h, qi, 0))
  kv_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_k, dim),
                         lambda b, h, qi, ki, t: (b, h, _fetched_k_block(cfg, t, b, h, qi, ki), 0))
  lse_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_q, 1), lambda b, h, qi, ki, t: (b, h, qi, 0))
  mask_specs = [_mask_spec(cfg, transposed=False)] if cfg.mask_kind != "none" else []
  out, lse = pl.pallas_call(
      functools.partial(_forward_kernel, cfg=cfg),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1,
          grid=grid,
          in_specs=[q_spec, kv_spec, kv_spec] + mask_specs,
          out_specs=[q_spec, lse_spec],
          scratch_shapes=[pltpu.VMEM((cfg.block_q, LANES), jnp.float32),
                          pltpu.VMEM((cfg.block_q, LANES), jnp.float32),
                          pltpu.VMEM((cfg.block_q, dim), jnp.float32)]),
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((batch, heads, seq_q, 1), jnp.float32)],
      compiler_params=_compiler_params(),
      interpret=cfg.interpret,
      name="flash_attention_forward",
  )(table, q, k, v, *_mask_operand(cfg, mask_array, transposed=False))
  return out, lse[..., 0]


def _backward(cfg, q, k, v, out, lse, d_out, tables, mask_array):
  batch, heads, seq_q, dim = q.shape
  delta = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)

  # dq: grid over (query block, key block), lse and delta as columns [block_q, 1].
  q_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_q, dim), lambda b, h, qi, ki, t: (b, h, qi, 0))
  kv_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_k, dim),
                         lambda b, h, qi, ki, t: (b, h, _fetched_k_block(cfg, t, b, h, qi, ki), 0))
  col_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_q, 1), lambda b, h, qi, ki, t: (b, h, qi, 0))
  mask_specs = [_mask_spec(cfg, transposed=False)] if cfg.mask_kind != "none" else []
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, cfg=cfg),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1,
          grid=(batch, heads, cfg.num_q_blocks, cfg.num_k_blocks),
          in_specs=[q_spec, kv_spec, kv_spec, q_spec, col_spec, col_spec] + mask_specs,
          out_specs=q_spec,
          scratch_shapes=[pltpu.VMEM((cfg.block_q, dim), jnp.float32)]),
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=_compiler_params(),
      interpret=cfg.interpret,
      name="flash_attention_dq",
  )(tables[0], q, k, v, d_out, lse[..., None], delta[..., None],
    *_mask_operand(cfg, mask_array, transposed=False))

  # dk, dv: grid over (key block, query block), lse and delta as rows [1, block_q].
  fetched_q = lambda b, h, ki, qi, t: _fetched_q_block(cfg, t, b, h, ki, qi)
  q_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_q, dim),
                        lambda b, h, ki, qi, t: (b, h, fetched_q(b, h, ki, qi, t), 0))
  kv_spec = pl.BlockSpec((_SQ, _SQ, cfg.block_k, dim), lambda b, h, ki, qi, t: (b, h, ki, 0))
  row_spec = pl.BlockSpec((_SQ, _SQ, 1, cfg.block_q),
                          lambda b, h, ki, qi, t: (b, h, 0, fetched_q(b, h, ki, qi, t)))
  mask_specs = [_mask_spec(cfg, transposed=True)] if cfg.mask_kind != "none" else []
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, cfg=cfg),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1,
          grid=(batch, heads, cfg.num_k_blocks, cfg.num_q_blocks),
          in_specs=[q_spec, kv_spec, kv_spec, q_spec, row_spec, row_spec] + mask_specs,
          out_specs=[kv_spec, kv_spec],
          scratch_shapes=[pltpu.VMEM((cfg.block_k, dim), jnp.float32),
                          pltpu.VMEM((cfg.block_k, dim), jnp.float32)]),
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype),
                 jax.ShapeDtypeStruct(v.shape, v.dtype)],
      compiler_params=_compiler_params(),
      interpret=cfg.interpret,
      name="flash_attention_dkv",
  )(tables[1], q, k, v, d_out, lse[:, :, None, :], delta[:, :, None, :],
    *_mask_operand(cfg, mask_array, transposed=True))
  return dq, dk, dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _padded_attention(cfg, q, k, v, tables, mask_array):
  """Attention on padded [B, H, S_pad, D] operands; differentiable in q, k, v."""
  return _forward(cfg, q, k, v, tables[0], mask_array)[0]


def _padded_attention_fwd(cfg, q, k, v, tables, mask_array):
  out, lse = _forward(cfg, q, k, v, tables[0], mask_array)
  return out, (q, k, v, out, lse, tables, mask_array)


def _padded_attention_bwd(cfg, residuals, d_out):
  q, k, v, out, lse, tables, mask_array = residuals
  dq, dk, dv = _backward(cfg, q, k, v, out, lse, d_out, tables, mask_array)
  return dq, dk, dv, None, None


_padded_attention.defvjp(_padded_attention_fwd, _padded_attention_bwd)


def _pad_seq(x, size):
  return jnp.pad(x, ((0, 0), (0, 0), (0, size - x.shape[2]), (0, 0)))


def flash_attention_tpu(q, k, v, *, causal=False, mask=None, scale=None,
                        block_q=DEFAULT_BLOCK, block_k=DEFAULT_BLOCK, interpret=False):
  """Fused attention on TPU (or in TPU interpret mode); arguments as `attention_reference`.

  Inputs are assumed checked by the dispatcher (`flash_attention`).

  Args:
    q: [B, S, H, D]; k, v: [B, T, H, D].
    causal: keep key t for query s only when t <= s (S == T).
    mask: optional boolean broadcastable to [B, H, S, T]; True keeps a key.
    scale: logit scale, 1/sqrt(D) by default.
    block_q, block_k: preferred tile sizes (multiples of 128 on TPU).
    interpret: False on TPU; `pltpu.InterpretParams()` or True to run on CPU.

  Returns:
    [B, S, H, D] in q's dtype; rows whose keys are all masked are zero.
  """
  batch, seq_q, heads, dim = q.shape
  seq_k = k.shape[1]
  scale = dim ** -0.5 if scale is None else float(scale)
  block_q, block_k = block_size(seq_q, block_q), block_size(seq_k, block_k)
  seq_q_pad = pl.cdiv(seq_q, block_q) * block_q
  seq_k_pad = pl.cdiv(seq_k, block_k) * block_k

  mask_kind, mask_array, live = "none", None, jnp.ones((1, 1, 1, 1), jnp.int32)
  mask_batch = mask_heads = table_q_blocks = 1
  if mask is not None:
    mask4 = masks.as_4d_mask(mask, batch, heads, seq_q, seq_k)
    mask_batch = mask4.shape[0]
    if masks.is_key_padding(mask4):
      mask_kind = "key"
      mask_array = masks.key_padding_rows(mask4, seq_k, seq_k_pad)
      live = masks.block_live_table(mask_array[:, None, None, :], block_q, block_k)
    else:
      mask_kind, mask_heads = "dense", mask4.shape[1]
      mask_array = masks.dense_tiles(mask4, seq_q, seq_q_pad, seq_k, seq_k_pad)
      live = masks.block_live_table(mask_array, block_q, block_k)
      table_q_blocks = seq_q_pad // block_q
  # One schedule per grid order: key blocks inner (forward, dq), query blocks inner (dk, dv).
  tables = (masks.tile_schedule(live).reshape(-1),
            masks.tile_schedule(jnp.swapaxes(live, 2, 3)).reshape(-1))

  cfg = KernelConfig(
      causal=causal, scale=scale, block_q=block_q, block_k=block_k, seq_k=seq_k,
      num_q_blocks=seq_q_pad // block_q, num_k_blocks=seq_k_pad // block_k,
      mask_kind=mask_kind, mask_batch=mask_batch, mask_heads=mask_heads,
      table_q_blocks=table_q_blocks, interpret=interpret)
  # The kernels work on [B, H, S, D] so that a tile is a contiguous [block, D] slab.
  to_heads_major = lambda x, size: _pad_seq(jnp.swapaxes(x, 1, 2), size)
  out = _padded_attention(cfg, to_heads_major(q, seq_q_pad), to_heads_major(k, seq_k_pad),
                          to_heads_major(v, seq_k_pad), tables, mask_array)
  return jnp.swapaxes(out[:, :, :seq_q], 1, 2)
