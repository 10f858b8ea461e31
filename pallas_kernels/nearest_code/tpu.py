"""Fused nearest-code search as a Pallas TPU (Mosaic) kernel; never materialises [N, K].

Grid (groups, token tiles, code tiles): each step scores one [tokens, codes] tile on the MXU and
folds it into a running min/argmin kept in VMEM scratch (flash-attention style); the code axis
is last and "arbitrary", so the running state carries across it. The per-code term ||c||^2 is
computed once outside (the same jnp code as the reference) and padded codes are masked to +inf,
so they never win; padded tokens are sliced off. D is zero-padded to the lane width.

Validated only in TPU interpret mode on CPU (`interpret=pltpu.InterpretParams()`): there the ids
equal the reference argmin in every test and the distances agree to about 2e-6 relative (a tile's
dot product over zero-padded D can round differently in the last ulp from XLA's full-size dot, so
a near-tie within one ulp could in principle resolve differently). It also lowers for TPU on
CPU (`.lower(lowering_platforms=("tpu",))`: Pallas's Mosaic lowering rules accept it), but it
has never been compiled by Mosaic or run on a real TPU, whose MXU also sums in its own order.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.nearest_code import reference
from pallas_kernels.nearest_code.online_argmin import merge, tile_min
from pallas_kernels.nearest_code.tiling import LANES, code_block, pad_axis, round_up, token_block

F32 = jnp.float32


def tile_scores(tokens, codes, code_norms, metric):
  """Scores [tokens, codes] of one tile, the same algebra as `reference.scores`."""
  dots = jax.lax.dot_general(tokens, codes, (((1,), (1,)), ((), ())),
                             precision=jax.lax.Precision.HIGHEST, preferred_element_type=F32)
  if metric == "cosine":
    return -dots
  return code_norms - 2.0 * dots


def masked_code_ids(shape, first_code, num_codes, scores):
  """Absolute code ids of a tile, and its scores with padded codes set to +inf."""
  code_ids = first_code + jax.lax.broadcasted_iota(jnp.int32, shape, 1)
  return code_ids, jnp.where(code_ids < num_codes, scores, jnp.inf)


def _search_kernel(tokens_ref, codes_ref, code_norms_ref, ids_ref, scores_ref,
                   best_ref, best_ids_ref, *, metric, num_codes):
  code_step = pl.program_id(2)

  @pl.when(code_step == 0)
  def _start():
    best_ref[...] = jnp.full(best_ref.shape, jnp.inf, F32)
    best_ids_ref[...] = jnp.zeros(best_ids_ref.shape, jnp.int32)

  scores = tile_scores(tokens_ref[...], codes_ref[...], code_norms_ref[...], metric)
  first_code = code_step * codes_ref.shape[0]
  code_ids, scores = masked_code_ids(scores.shape, first_code, num_codes, scores)
  best, best_ids = merge(best_ref[...], best_ids_ref[...], *tile_min(scores, code_ids))
  best_ref[...] = best
  best_ids_ref[...] = best_ids

  @pl.when(code_step == pl.num_programs(2) - 1)
  def _finish():
    ids_ref[...] = best_ids
    scores_ref[...] = best


def kernel_inputs(x, codebook, metric):
  """What the kernel reads: prepared inputs (bf16 l2 inputs stay bf16 for the MXU) and ||c||^2."""
  x32, codebook32 = reference.prepare(x, codebook, metric)
  code_norms = reference.squared_norms(codebook32)
  if metric == "l2" and x.dtype == codebook.dtype:
    return x, codebook, x32, code_norms
  return x32, codebook32, x32, code_norms


def grouped_search(tokens, codes, code_norms, *, metric, block_tokens=256, block_codes=512,
                   interpret=None):
  """Best scores and ids per group: tokens [G, N, D], codes [G, K, D], code_norms [G, K].

  Returns:
    (ids int32 [G, N], best scores float32 [G, N]); see `reference` for the score definition.
  """
  groups, num_tokens, dim = tokens.shape
  num_codes = codes.shape[1]
  tn = token_block(num_tokens, block_tokens)
  tk = code_block(num_codes, block_codes)
  padded_tokens, padded_codes = round_up(num_tokens, tn), round_up(num_codes, tk)
  padded_dim = round_up(dim, LANES)
  tokens = pad_axis(pad_axis(tokens, 1, padded_tokens), 2, padded_dim)
  codes = pad_axis(pad_axis(codes, 1, padded_codes), 2, padded_dim)
  code_norms = pad_axis(code_norms, 1, padded_codes)[:, None, :]
  grid = (groups, padded_tokens // tn, padded_codes // tk)
  squeezed = pl.squeezed
  ids, scores = pl.pallas_call(
      functools.partial(_search_kernel, metric=metric, num_codes=num_codes),
      grid=grid,
      in_specs=[
          pl.BlockSpec((squeezed, tn, padded_dim), lambda g, i, k: (g, i, 0)),
          pl.BlockSpec((squeezed, tk, padded_dim), lambda g, i, k: (g, k, 0)),
          pl.BlockSpec((squeezed, 1, tk), lambda g, i, k: (g, 0, k)),
      ],
      out_specs=[
          pl.BlockSpec((squeezed, tn, 1), lambda g, i, k: (g, i, 0)),
          pl.BlockSpec((squeezed, tn, 1), lambda g, i, k: (g, i, 0)),
      ],
      out_shape=[
          jax.ShapeDtypeStruct((groups, padded_tokens, 1), jnp.int32),
          jax.ShapeDtypeStruct((groups, padded_tokens, 1), F32),
      ],
      scratch_shapes=[pltpu.VMEM((tn, 1), F32), pltpu.VMEM((tn, 1), jnp.int32)],
      compiler_params=pltpu.CompilerParams(
          dimension_semantics=("parallel", "parallel", "arbitrary")),
      interpret=interpret,
  )(tokens, codes, code_norms)
  return ids[:, :num_tokens, 0], scores[:, :num_tokens, 0]


def nearest_code(x, codebook, *, metric="l2", interpret=None, **blocks):
  """(ids int32 [N], distances float32 [N]) for x [N, D], codebook [K, D]; inputs unchecked."""
  tokens, codes, x32, code_norms = kernel_inputs(x, codebook, metric)
  ids, scores = grouped_search(tokens[None], codes[None], code_norms[None], metric=metric,
                               interpret=interpret, **blocks)
  return ids[0], reference.distances_from_scores(x32, scores[0], metric)


def grouped_nearest_code(x, codebooks, *, metric="l2", interpret=None, **blocks):
  """(ids int32 [N, G], distances float32 [N, G]) for x [N, G, D], codebooks [G, K, D]."""
  prepare = jax.vmap(lambda xg, cg: kernel_inputs(xg, cg, metric), in_axes=(1, 0))
  tokens, codes, x32, code_norms = prepare(x, codebooks)
  ids, scores = grouped_search(tokens, codes, code_norms, metric=metric, interpret=interpret,
                               **blocks)
  distances = jax.vmap(lambda xg, sg: reference.distances_from_scores(xg, sg, metric))(x32, scores)
  return ids.T, distances.T
