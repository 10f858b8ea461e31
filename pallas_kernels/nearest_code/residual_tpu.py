"""Residual (multi-level) nearest-code search as one Pallas TPU call.

Grid (token tiles, levels, code tiles), levels and codes both "arbitrary": the residual of a
token tile lives in VMEM scratch for the whole level loop. For each level the code tiles stream
past as in `tpu.py`; besides the running min/argmin the kernel keeps the winning code vector
itself (a one-hot matmul of the tile's winner, exact: one product by 1.0), so at the last code
tile of a level it can subtract it, r_{l+1} = r_l - c_l[id_l], without a gather. Squared l2 only;
the residual and the codebooks are float32 (bf16 codebooks are upcast before the call).

Validated only in TPU interpret mode on CPU (ids equal the reference at every level in the
tests) and by lowering for TPU on CPU; never compiled by Mosaic or run on a real TPU.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.nearest_code import reference
from pallas_kernels.nearest_code.online_argmin import merge, tile_min
from pallas_kernels.nearest_code.tiling import LANES, code_block, pad_axis, round_up, token_block
from pallas_kernels.nearest_code.tpu import masked_code_ids, tile_scores

F32 = jnp.float32


def _residual_kernel(x_ref, codes_ref, code_norms_ref, ids_ref, distances_ref,
                     residual_ref, best_ref, best_ids_ref, best_code_ref, *, num_codes):
  level, code_step = pl.program_id(1), pl.program_id(2)

  @pl.when((level == 0) & (code_step == 0))
  def _start_tokens():
    residual_ref[...] = x_ref[...]

  @pl.when(code_step == 0)
  def _start_level():
    best_ref[...] = jnp.full(best_ref.shape, jnp.inf, F32)
    best_ids_ref[...] = jnp.zeros(best_ids_ref.shape, jnp.int32)
    best_code_ref[...] = jnp.zeros(best_code_ref.shape, F32)

  codes = codes_ref[...]
  scores = tile_scores(residual_ref[...], codes, code_norms_ref[...], "l2")
  code_ids, scores = masked_code_ids(scores.shape, code_step * codes.shape[0], num_codes, scores)
  tile_best, tile_ids = tile_min(scores, code_ids)
  one_hot = (code_ids == tile_ids).astype(F32)
  tile_code = jax.lax.dot(one_hot, codes, precision=jax.lax.Precision.HIGHEST,
                          preferred_element_type=F32)
  best_code_ref[...] = jnp.where(tile_best < best_ref[...], tile_code, best_code_ref[...])
  best, best_ids = merge(best_ref[...], best_ids_ref[...], tile_best, tile_ids)
  best_ref[...] = best
  best_ids_ref[...] = best_ids

  @pl.when(code_step == pl.num_programs(2) - 1)
  def _finish_level():
    residual = residual_ref[...]
    ids_ref[...] = best_ids
    distances_ref[...] = jnp.maximum(
        jnp.sum(residual * residual, axis=1, keepdims=True) + best, 0.0)
    residual_ref[...] = residual - best_code_ref[...]


def residual_nearest_code(x, codebooks, *, block_tokens=256, block_codes=512, interpret=None):
  """(ids int32 [N, L], distances float32 [N, L]) for x [N, D], codebooks [L, K, D].

  Same semantics as `reference.residual_nearest_code_reference`; inputs unchecked.
  """
  x, codebooks = reference.prepare(x, codebooks, "l2")
  code_norms = reference.squared_norms(codebooks)
  num_tokens, dim = x.shape
  levels, num_codes, _ = codebooks.shape
  tn = token_block(num_tokens, block_tokens)
  tk = code_block(num_codes, block_codes)
  padded_tokens, padded_codes = round_up(num_tokens, tn), round_up(num_codes, tk)
  padded_dim = round_up(dim, LANES)
  x = pad_axis(pad_axis(x, 0, padded_tokens), 1, padded_dim)
  codebooks = pad_axis(pad_axis(codebooks, 1, padded_codes), 2, padded_dim)
  code_norms = pad_axis(code_norms, 1, padded_codes)[:, None, :]
  squeezed = pl.squeezed
  ids, distances = pl.pallas_call(
      functools.partial(_residual_kernel, num_codes=num_codes),
      grid=(padded_tokens // tn, levels, padded_codes // tk),
      in_specs=[
          pl.BlockSpec((tn, padded_dim), lambda i, l, k: (i, 0)),
          pl.BlockSpec((squeezed, tk, padded_dim), lambda i, l, k: (l, k, 0)),
          pl.BlockSpec((squeezed, 1, tk), lambda i, l, k: (l, 0, k)),
      ],
      out_specs=[
          pl.BlockSpec((squeezed, tn, 1), lambda i, l, k: (l, i, 0)),
          pl.BlockSpec((squeezed, tn, 1), lambda i, l, k: (l, i, 0)),
      ],
      out_shape=[
          jax.ShapeDtypeStruct((levels, padded_tokens, 1), jnp.int32),
          jax.ShapeDtypeStruct((levels, padded_tokens, 1), F32),
      ],
      scratch_shapes=[
          pltpu.VMEM((tn, padded_dim), F32),
          pltpu.VMEM((tn, 1), F32),
          pltpu.VMEM((tn, 1), jnp.int32),
          pltpu.VMEM((tn, padded_dim), F32),
      ],
      compiler_params=pltpu.CompilerParams(
          dimension_semantics=("parallel", "arbitrary", "arbitrary")),
      interpret=interpret,
  )(x, codebooks, code_norms)
  return ids[:, :num_tokens, 0].T, distances[:, :num_tokens, 0].T
