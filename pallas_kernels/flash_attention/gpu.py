"""Flash attention for Hopper GPUs: Pallas Mosaic GPU kernels (`plgpu.kernel`, wgmma).

Forward: one CUDA block (one warpgroup) per (batch, head, 64-query block). Q stays in shared
memory; `plgpu.emit_pipeline` streams K and V blocks through it with TMA while the warpgroup
computes S = Q K^T on the tensor cores (wgmma, float32 accumulator), the online softmax in
registers (float32), and O += P V with P staged through shared memory in the input dtype.
It writes O and the per-row logsumexp.

Backward: two kernels, as on TPU. dq: one block per query block, streaming K and V. dk, dv:
one block per key block, streaming Q, dO, logsumexp and delta = rowsum(dO * O), working on
transposed [key, query] tiles so every product is a wgmma with operands in shared memory.

Supports bf16/fp16 inputs (wgmma transposes only 16-bit operands), head dims that are
multiples of 16 up to 128 (256 overflows shared memory), causal attention and key-padding
masks ([B or 1, 1, 1, T]); other masks are not implemented here (the dispatcher uses cuDNN
or XLA for them). Sequences are padded to whole blocks; padded keys are masked.

Validation: on CPU only, numerically in Mosaic GPU interpret mode (`InterpretGPUParams`)
against `attention_reference`, and by lowering to Mosaic GPU with `jax.export(...,
platforms=["cuda"])`. It has not been compiled by ptxas or run on a GPU, and it is not tuned
(no warp specialisation; causal tiles above the diagonal skip their compute but not their
TMA copies; 64 x 64 tiles).
"""
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from pallas_kernels.flash_attention import masks

# Finite, so that exp(m_prev - m_next) never evaluates inf - inf on rows with no key yet.
MASKED_LOGIT = -1e30
# Logsumexp stored for rows with no key at all: exp(s - it) is 0 for any logit s.
EMPTY_ROW_LSE = 1e30
# wgmma works on 64-row tiles per warpgroup.
BLOCK_Q = 64
BLOCK_K = 64
SUPPORTED_DTYPES = (jnp.bfloat16, jnp.float16)


@dataclasses.dataclass(frozen=True)
class GpuConfig:
  causal: bool
  scale: float
  num_q_blocks: int
  num_k_blocks: int
  key_mask_batch: int  # rows of the key-keep array: B, or 1 when shared
  interpret: Any


def supports(q, k, mask) -> bool:
  """Whether the GPU kernels take these (checked) operands; else the dispatcher falls back."""
  dim = q.shape[-1]
  key_padding_only = mask is None or masks.is_key_padding(
      masks.as_4d_mask(mask, q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
  return q.dtype in SUPPORTED_DTYPES and dim % 16 == 0 and dim <= 128 and key_padding_only


def _mma_transforms(cols: int, dtype):
  """SMEM tiling + swizzle for wgmma operands, chosen from the head dim `cols`.

  Every shared-memory operand (Q, K, V, dO and the [64, 64] P / dS tiles) uses this one
  swizzle: wgmma needs its two operands' swizzles to match.
  """
  itemsize = jnp.dtype(dtype).itemsize
  for swizzle in (128, 64, 32):
    if cols % (swizzle // itemsize) == 0:
      return (plgpu.TilingTransform((8, swizzle // itemsize)), plgpu.SwizzleTransform(swizzle))
  raise ValueError(f"no wgmma swizzle fits a minor dimension of {cols} {dtype} elements")


def _mma(cfg, lhs_ref, rhs_ref, *, transpose_rhs=False):
  """lhs @ rhs (or lhs @ rhs.T) on the tensor cores, float32; returns the value.

  Mosaic GPU interpret mode ignores transposed wgmma operands, so there the transposed
  product is a plain dot of the same shared-memory tiles.
  """
  if transpose_rhs and cfg.interpret:
    return jax.lax.dot_general(lhs_ref[...], rhs_ref[...], (((1,), (1,)), ((), ())),
                               preferred_element_type=jnp.float32)
  rhs = plgpu.transpose_ref(rhs_ref, (1, 0)) if transpose_rhs else rhs_ref
  shape = (lhs_ref.shape[0], rhs.shape[1])

  def run(acc_ref):
    plgpu.wgmma(acc_ref, lhs_ref, rhs)
    return acc_ref[...]
  return pl.run_scoped(run, plgpu.ACC(shape, jnp.float32))


def _with_layout(cfg, x, layout):
  """x in the given register layout. Layouts never change values, and Mosaic GPU interpret
  mode has no layout_cast, so the cast is left out there."""
  return x if cfg.interpret else plgpu.layout_cast(x, layout)


def _iota(cfg, shape, dim):
  """Positions along `dim` of a tile in the wgmma register layout."""
  if cfg.interpret:
    return jax.lax.broadcasted_iota(jnp.int32, shape, dim)
  return plgpu.broadcasted_iota(jnp.int32, shape, dim, layout=plgpu.Layout.WGMMA)


def _along_rows(x, shape):
  """[rows] -> [rows, cols]: one value per row (x[:, None], in a form Mosaic GPU lowers)."""
  return jax.lax.broadcast_in_dim(x, shape, (0,))


def _along_cols(x, shape):
  """[cols] -> [rows, cols]: one value per column (x[None, :])."""
  return jax.lax.broadcast_in_dim(x, shape, (1,))


def _keep(cfg, keep_row, q_start, k_start, shape, *, transposed):
  """Boolean tile: key kept by the key mask (and, if causal, at or before the query)."""
  keep = (_along_rows if transposed else _along_cols)(keep_row, shape) > 0.5
  if cfg.causal:
    q_axis, k_axis = (1, 0) if transposed else (0, 1)
    q_pos = q_start + _iota(cfg, shape, q_axis)
    k_pos = k_start + _iota(cfg, shape, k_axis)
    keep = keep & (q_pos >= k_pos)
  return keep


def _skip_dead_tile(cfg, qi, ki, update, carry):
  """update(carry), or carry unchanged for a causal tile entirely above the diagonal."""
  if not cfg.causal:
    return update(carry)
  live = ki * BLOCK_K <= qi * BLOCK_Q + BLOCK_Q - 1
  return jax.lax.cond(live, update, lambda carry: carry, carry)


def _forward(cfg, q, k, v, key_keep):
  batch, heads, seq_q, dim = q.shape
  dtype = q.dtype
  row_layout = plgpu.Layout.WGMMA.reduce(1)

  def kernel(q_g, k_g, v_g, keep_g, o_g, lse_g, q_s, p_s, o_s, lse_s, barrier):
    b, h, qi = (jax.lax.axis_index(name) for name in ("b", "h", "q"))
    q_rows = pl.ds(qi * BLOCK_Q, BLOCK_Q)
    plgpu.copy_gmem_to_smem(q_g.at[b, h, q_rows], q_s, barrier)
    plgpu.barrier_wait(barrier)
    keep_b = b if cfg.key_mask_batch > 1 else 0

    def body(indices, k_s, v_s, keep_s, carry):
      (ki,) = indices
      return _skip_dead_tile(cfg, qi, ki, functools.partial(accumulate, ki, k_s, v_s, keep_s),
                             carry)

    def accumulate(ki, k_s, v_s, keep_s, carry):
      row_max, row_sum, acc = carry
      logits = _mma(cfg, q_s, k_s, transpose_rhs=True) * cfg.scale
      keep_row = _with_layout(cfg, keep_s[...], plgpu.Layout.WGMMA.reduce(0))
      keep = _keep(cfg, keep_row, qi * BLOCK_Q, ki * BLOCK_K, logits.shape, transposed=False)
      logits = jnp.where(keep, logits, MASKED_LOGIT)
      new_max = jnp.maximum(row_max, jnp.max(logits, axis=1))
      rescale = jnp.exp(row_max - new_max)
      probs = jnp.where(keep, jnp.exp(logits - _along_rows(new_max, logits.shape)), 0.0)
      row_sum = row_sum * rescale + jnp.sum(probs, axis=1)
      p_s[...] = probs.astype(dtype)
      plgpu.commit_smem()  # make P visible to the tensor cores
      # A fresh accumulator, not ACC.init(acc): Mosaic GPU interpret mode lacks run_state.
      acc = acc * _along_rows(rescale, acc.shape) + _mma(cfg, p_s, v_s)
      return new_max, row_sum, acc

    init = (_with_layout(cfg, jnp.full((BLOCK_Q,), MASKED_LOGIT, jnp.float32), row_layout),
            _with_layout(cfg, jnp.zeros((BLOCK_Q,), jnp.float32), row_layout),
            _with_layout(cfg, jnp.zeros((BLOCK_Q, dim), jnp.float32), plgpu.Layout.WGMMA))
    kv_spec = plgpu.BlockSpec((None, None, BLOCK_K, dim), lambda ki: (b, h, ki, 0),
                              transforms=_mma_transforms(dim, dtype))
    keep_spec = plgpu.BlockSpec((None, BLOCK_K), lambda ki: (keep_b, ki))
    row_max, row_sum, acc = plgpu.emit_pipeline(
        body, grid=(cfg.num_k_blocks,), in_specs=[kv_spec, kv_spec, keep_spec],
        init_carry=init, max_concurrent_steps=2,  # prefetch the next block with TMA
    )(k_g, v_g, keep_g)

    has_keys = row_sum > 0
    safe_sum = jnp.where(has_keys, row_sum, 1.0)
    out = acc / _along_rows(safe_sum, acc.shape)
    o_s[...] = jnp.where(_along_rows(has_keys, acc.shape), out, 0.0).astype(dtype)
    lse_s[...] = jnp.where(has_keys, row_max + jnp.log(safe_sum), EMPTY_ROW_LSE)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(o_s, o_g.at[b, h, q_rows])
    plgpu.copy_smem_to_gmem(lse_s, lse_g.at[b, h, q_rows])
    plgpu.wait_smem_to_gmem(0)

  return plgpu.kernel(
      kernel,
      out_type=(jax.ShapeDtypeStruct(q.shape, dtype),
                jax.ShapeDtypeStruct((batch, heads, seq_q), jnp.float32)),
      scratch_types=dict(
          q_s=plgpu.SMEM((BLOCK_Q, dim), dtype, transforms=_mma_transforms(dim, dtype)),
          p_s=plgpu.SMEM((BLOCK_Q, BLOCK_K), dtype, transforms=_mma_transforms(dim, dtype)),
          o_s=plgpu.SMEM((BLOCK_Q, dim), dtype),
          lse_s=plgpu.SMEM((BLOCK_Q,), jnp.float32),
          barrier=plgpu.Barrier(num_arrivals=1)),
      grid=(batch, heads, cfg.num_q_blocks),
      grid_names=("b", "h", "q"),
      interpret=cfg.interpret,
  )(q, k, v, key_keep)


def _dq(cfg, q, k, v, d_out, lse, delta, key_keep):
  batch, heads, _, dim = q.shape
  dtype = q.dtype
  row_layout = plgpu.Layout.WGMMA.reduce(1)

  def kernel(q_g, k_g, v_g, do_g, lse_g, delta_g, keep_g, dq_g,
             q_s, do_s, lse_s, delta_s, ds_s, dq_s, barrier):
    b, h, qi = (jax.lax.axis_index(name) for name in ("b", "h", "q"))
    q_rows = pl.ds(qi * BLOCK_Q, BLOCK_Q)
    for src, dst in ((q_g, q_s), (do_g, do_s), (lse_g, lse_s), (delta_g, delta_s)):
      plgpu.copy_gmem_to_smem(src.at[b, h, q_rows], dst, barrier)
    plgpu.barrier_wait(barrier)
    lse = _with_layout(cfg, lse_s[...], row_layout)
    delta = _with_layout(cfg, delta_s[...], row_layout)
    keep_b = b if cfg.key_mask_batch > 1 else 0

    def body(indices, k_s, v_s, keep_s, acc):
      (ki,) = indices
      return _skip_dead_tile(cfg, qi, ki, functools.partial(accumulate, ki, k_s, v_s, keep_s),
                             acc)

    def accumulate(ki, k_s, v_s, keep_s, acc):
      logits = _mma(cfg, q_s, k_s, transpose_rhs=True) * cfg.scale
      keep_row = _with_layout(cfg, keep_s[...], plgpu.Layout.WGMMA.reduce(0))
      keep = _keep(cfg, keep_row, qi * BLOCK_Q, ki * BLOCK_K, logits.shape, transposed=False)
      logits = jnp.where(keep, logits, MASKED_LOGIT)
      probs = jnp.exp(logits - _along_rows(lse, logits.shape))  # masked and empty rows: 0
      dprobs = _mma(cfg, do_s, v_s, transpose_rhs=True)
      ds_s[...] = (probs * (dprobs - _along_rows(delta, logits.shape))).astype(dtype)
      plgpu.commit_smem()
      return acc + _mma(cfg, ds_s, k_s)

    kv_spec = plgpu.BlockSpec((None, None, BLOCK_K, dim), lambda ki: (b, h, ki, 0),
                              transforms=_mma_transforms(dim, dtype))
    keep_spec = plgpu.BlockSpec((None, BLOCK_K), lambda ki: (keep_b, ki))
    init = _with_layout(cfg, jnp.zeros((BLOCK_Q, dim), jnp.float32), plgpu.Layout.WGMMA)
    acc = plgpu.emit_pipeline(
        body, grid=(cfg.num_k_blocks,), in_specs=[kv_spec, kv_spec, keep_spec],
        init_carry=init, max_concurrent_steps=2,  # prefetch the next block with TMA
    )(k_g, v_g, keep_g)
    dq_s[...] = (acc * cfg.scale).astype(dtype)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(dq_s, dq_g.at[b, h, q_rows])
    plgpu.wait_smem_to_gmem(0)

  transforms = _mma_transforms(dim, dtype)
  return plgpu.kernel(
      kernel,
      out_type=jax.ShapeDtypeStruct(q.shape, dtype),
      scratch_types=dict(
          q_s=plgpu.SMEM((BLOCK_Q, dim), dtype, transforms=transforms),
          do_s=plgpu.SMEM((BLOCK_Q, dim), dtype, transforms=transforms),
          lse_s=plgpu.SMEM((BLOCK_Q,), jnp.float32),
          delta_s=plgpu.SMEM((BLOCK_Q,), jnp.float32),
          ds_s=plgpu.SMEM((BLOCK_Q, BLOCK_K), dtype, transforms=_mma_transforms(dim, dtype)),
          dq_s=plgpu.SMEM((BLOCK_Q, dim), dtype),
          barrier=plgpu.Barrier(num_arrivals=4)),
      grid=(batch, heads, cfg.num_q_blocks),
      grid_names=("b", "h", "q"),
      interpret=cfg.interpret,
  )(q, k, v, d_out, lse, delta, key_keep)


def _dkv(cfg, q, k, v, d_out, lse, delta, key_keep):
  batch, heads, _, dim = k.shape
  dtype = q.dtype

  def kernel(q_g, k_g, v_g, do_g, lse_g, delta_g, keep_g, dk_g, dv_g,
             k_s, v_s, keep_s, p_s, ds_s, dk_s, dv_s, barrier):
    b, h, ki = (jax.lax.axis_index(name) for name in ("b", "h", "k"))
    k_rows = pl.ds(ki * BLOCK_K, BLOCK_K)
    keep_b = b if cfg.key_mask_batch > 1 else 0
    plgpu.copy_gmem_to_smem(k_g.at[b, h, k_rows], k_s, barrier)
    plgpu.copy_gmem_to_smem(v_g.at[b, h, k_rows], v_s, barrier)
    plgpu.copy_gmem_to_smem(keep_g.at[keep_b, k_rows], keep_s, barrier)
    plgpu.barrier_wait(barrier)
    keep_col = _with_layout(cfg, keep_s[...], plgpu.Layout.WGMMA.reduce(1))

    def body(indices, q_s, do_s, lse_s, delta_s, carry):
      (qi,) = indices
      update = functools.partial(accumulate, qi, q_s, do_s, lse_s, delta_s)
      return _skip_dead_tile(cfg, qi, ki, update, carry)

    def accumulate(qi, q_s, do_s, lse_s, delta_s, carry):
      # Transposed tiles [block_k, block_q]: lse and delta vary along the columns.
      dk_acc, dv_acc = carry
      shape = (BLOCK_K, BLOCK_Q)
      logits_t = _mma(cfg, k_s, q_s, transpose_rhs=True) * cfg.scale
      keep_t = _keep(cfg, keep_col, qi * BLOCK_Q, ki * BLOCK_K, shape, transposed=True)
      logits_t = jnp.where(keep_t, logits_t, MASKED_LOGIT)
      lse = _with_layout(cfg, lse_s[...], plgpu.Layout.WGMMA.reduce(0))
      delta = _with_layout(cfg, delta_s[...], plgpu.Layout.WGMMA.reduce(0))
      probs_t = jnp.exp(logits_t - _along_cols(lse, shape))
      p_s[...] = probs_t.astype(dtype)
      plgpu.commit_smem()
      dv_acc = dv_acc + _mma(cfg, p_s, do_s)
      dprobs_t = _mma(cfg, v_s, do_s, transpose_rhs=True)
      ds_s[...] = (probs_t * (dprobs_t - _along_cols(delta, shape))).astype(dtype)
      plgpu.commit_smem()
      return dk_acc + _mma(cfg, ds_s, q_s), dv_acc

    q_spec = plgpu.BlockSpec((None, None, BLOCK_Q, dim), lambda qi: (b, h, qi, 0),
                             transforms=_mma_transforms(dim, dtype))
    row_spec = plgpu.BlockSpec((None, None, BLOCK_Q), lambda qi: (b, h, qi))
    zeros = _with_layout(cfg, jnp.zeros((BLOCK_K, dim), jnp.float32), plgpu.Layout.WGMMA)
    dk_acc, dv_acc = plgpu.emit_pipeline(
        body, grid=(cfg.num_q_blocks,), in_specs=[q_spec, q_spec, row_spec, row_spec],
        init_carry=(zeros, zeros), max_concurrent_steps=2,
    )(q_g, do_g, lse_g, delta_g)
    dk_s[...] = (dk_acc * cfg.scale).astype(dtype)
    dv_s[...] = dv_acc.astype(dtype)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(dk_s, dk_g.at[b, h, k_rows])
    plgpu.copy_smem_to_gmem(dv_s, dv_g.at[b, h, k_rows])
    plgpu.wait_smem_to_gmem(0)

  transforms = _mma_transforms(dim, dtype)
  return plgpu.kernel(
      kernel,
      out_type=(jax.ShapeDtypeStruct(k.shape, dtype), jax.ShapeDtypeStruct(v.shape, dtype)),
      scratch_types=dict(
          k_s=plgpu.SMEM((BLOCK_K, dim), dtype, transforms=transforms),
          v_s=plgpu.SMEM((BLOCK_K, dim), dtype, transforms=transforms),
          keep_s=plgpu.SMEM((BLOCK_K,), jnp.float32),
          p_s=plgpu.SMEM((BLOCK_K, BLOCK_Q), dtype, transforms=transforms),
          ds_s=plgpu.SMEM((BLOCK_K, BLOCK_Q), dtype, transforms=transforms),
          dk_s=plgpu.SMEM((BLOCK_K, dim), dtype),
          dv_s=plgpu.SMEM((BLOCK_K, dim), dtype),
          barrier=plgpu.Barrier(num_arrivals=3)),
      grid=(batch, heads, cfg.num_k_blocks),
      grid_names=("b", "h", "k"),
      interpret=cfg.interpret,
  )(q, k, v, d_out, lse, delta, key_keep)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _padded_attention(cfg, q, k, v, key_keep):
  """Attention on padded [B, H, S_pad, D] operands; differentiable in q, k, v."""
  return _forward(cfg, q, k, v, key_keep)[0]


def _padded_attention_fwd(cfg, q, k, v, key_keep):
  out, lse = _forward(cfg, q, k, v, key_keep)
  return out, (q, k, v, out, lse, key_keep)


def _padded_attention_bwd(cfg, residuals, d_out):
  q, k, v, out, lse, key_keep = residuals
  delta = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)
  dq = _dq(cfg, q, k, v, d_out, lse, delta, key_keep)
  dk, dv = _dkv(cfg, q, k, v, d_out, lse, delta, key_keep)
  return dq, dk, dv, None


_padded_attention.defvjp(_padded_attention_fwd, _padded_attention_bwd)


def _pad_seq(x, size):
  return jnp.pad(x, ((0, 0), (0, 0), (0, size - x.shape[2]), (0, 0)))


def flash_attention_gpu(q, k, v, *, causal=False, mask=None, scale=None, interpret=None):
  """Fused attention on a Hopper GPU (or in Mosaic GPU interpret mode); see module docstring.

  Args:
    q: [B, S, H, D]; k, v: [B, T, H, D]; bf16 or fp16.
    causal: keep key t for query s only when t <= s (S == T).
    mask: None or a key-padding mask, boolean of shape [B or 1, 1, 1, T] (True keeps a key).
    scale: logit scale, 1/sqrt(D) by default.
    interpret: None on a GPU; `InterpretGPUParams()` to run on CPU.

  Returns:
    [B, S, H, D] in q's dtype; rows whose keys are all masked are zero.
  """
  batch, seq_q, heads, dim = q.shape
  seq_k = k.shape[1]
  if not supports(q, k, mask):
    raise NotImplementedError(
        f"the Pallas GPU kernel takes bf16/fp16, head dim a multiple of 16 up to 128 and at "
        f"most a key-padding mask [B, 1, 1, T]; got {q.dtype}, D={dim}, mask "
        f"{None if mask is None else mask.shape}; use impl='cudnn' or impl='xla'")
  scale = dim ** -0.5 if scale is None else float(scale)
  seq_q_pad = pl.cdiv(seq_q, BLOCK_Q) * BLOCK_Q
  seq_k_pad = pl.cdiv(seq_k, BLOCK_K) * BLOCK_K
  if mask is None:
    mask = jnp.ones((1, 1, 1, seq_k), bool)
  mask4 = masks.as_4d_mask(mask, batch, heads, seq_q, seq_k)
  key_keep = masks.key_padding_rows(mask4, seq_k, seq_k_pad).astype(jnp.float32)
  cfg = GpuConfig(causal=causal, scale=scale, num_q_blocks=seq_q_pad // BLOCK_Q,
                  num_k_blocks=seq_k_pad // BLOCK_K, key_mask_batch=key_keep.shape[0],
                  interpret=interpret)
  to_heads_major = lambda x, size: _pad_seq(jnp.swapaxes(x, 1, 2), size)
  out = _padded_attention(cfg, to_heads_major(q, seq_q_pad), to_heads_major(k, seq_k_pad),
                          to_heads_major(v, seq_k_pad), key_keep)
  return jnp.swapaxes(out[:, :, :seq_q], 1, 2)
