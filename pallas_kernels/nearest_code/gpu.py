"""Fused nearest-code search for Hopper GPUs, written with Mosaic GPU (`plgpu.kernel`).

One CUDA block (one warpgroup) owns 64 tokens: it copies their [64, D] tile to shared memory
once, then streams the codebook (transposed to [D, K] outside, so wgmma's right operand needs no
transposed view) through shared memory in [D, codes] tiles with
`plgpu.emit_pipeline` (TMA copies overlapping compute), scores each tile with a wgmma into a
float32 accumulator, and folds the tile into a running min/argmin carried in registers. Mosaic
GPU has no argmin lowering, so a tile's winner is min(where(score == min, code id, NO_ID)).

Operands are bfloat16 (wgmma would round float32 to tf32, which is not what the reference
computes), so this kernel serves bf16 "l2" searches with D <= 256; everything else goes to XLA
on a GPU.
D is zero-padded to a multiple of 64 (one 128-byte swizzle row of bf16) and K to the code tile.

Validated ONLY on CPU: (1) Mosaic GPU's interpreter (`InterpretGPUParams`, which simulates
shared memory, TMA copies, barriers and wgmma) gives ids equal to the reference argmin; register
layout hints are skipped there, as the interpreter has no rule for them. (2) The kernel lowers
for CUDA (`.lower(lowering_platforms=("cuda",))`), so Pallas's Mosaic GPU lowering rules accept
its shapes, layouts and ops. It has NEVER been compiled by the Mosaic GPU pipeline or ptxas, nor
run on a real GPU: correctness and speed on Hopper are unverified.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from pallas_kernels.nearest_code import reference
from pallas_kernels.nearest_code.online_argmin import merge, tile_min
from pallas_kernels.nearest_code.tiling import pad_axis, round_up

F32 = jnp.float32
BLOCK_TOKENS = 64  # wgmma's M for one warpgroup.
SWIZZLE_BYTES = 128
DIM_MULTIPLE = SWIZZLE_BYTES // 2  # bf16 elements in one swizzled row.
# Shared memory holds the token tile and two code tiles: (64 + 2 * 128) * D * 2 bytes, 160 KiB at
# D = 256, within Hopper's 227 KiB; larger D would need a loop over D chunks.
MAX_DIM = 256


def interpret_params():
  """Mosaic GPU's CPU interpreter (a private JAX API in 0.10.2, so imported lazily)."""
  from jax._src.pallas.mosaic_gpu.interpret.params import InterpretGPUParams
  return InterpretGPUParams()


def suits(x, codebook, metric) -> bool:
  """Whether this kernel serves the search (otherwise the dispatcher uses XLA)."""
  return (metric == "l2" and x.dtype == codebook.dtype == jnp.bfloat16
          and x.shape[-1] <= MAX_DIM)


def _smem_transforms():
  return (plgpu.TilingTransform((8, DIM_MULTIPLE)), plgpu.SwizzleTransform(SWIZZLE_BYTES))


def _search(x_gmem, codes_gmem, norms_gmem, ids_gmem, scores_gmem, *, num_codes, block_codes,
            interpreting):
  # Register layout hints only steer Mosaic GPU's code generation; its CPU interpreter has no
  # rule for them, so they are left out there (they do not change any value).
  def with_layout(value, layout):
    return value if interpreting else plgpu.layout_cast(value, layout)

  first_token = jax.lax.axis_index("tokens") * BLOCK_TOKENS
  tokens = pl.ds(first_token, BLOCK_TOKENS)
  row_layout = plgpu.Layout.WGMMA.reduce(1)

  def scoped(x_smem, ids_smem, scores_smem, barrier):
    plgpu.copy_gmem_to_smem(x_gmem.at[tokens], x_smem, barrier)
    plgpu.barrier_wait(barrier)

    def code_tile(indices, codes_smem, norms_smem, carry):
      (code_step,) = indices

      def dots(acc_ref):
        plgpu.wgmma(acc_ref, x_smem, codes_smem)
        plgpu.wgmma_wait(0)
        return acc_ref[...]

      shape = (BLOCK_TOKENS, block_codes)
      tile_dots = pl.run_scoped(dots, plgpu.ACC(shape, F32))
      # A layout_cast right after the load tells Mosaic GPU which register layout to load into.
      norms = with_layout(norms_smem[...], plgpu.Layout.WGMMA.reduce(0))
      scores = jax.lax.broadcast_in_dim(norms, shape, [1]) - 2.0 * tile_dots
      code_ids = code_step * block_codes + with_layout(
          jax.lax.broadcasted_iota(jnp.int32, shape, 1), plgpu.Layout.WGMMA)
      scores = jnp.where(code_ids < num_codes, scores, jnp.inf)
      return merge(*carry, *tile_min(scores, code_ids, keepdims=False))

    start = (with_layout(jnp.full((BLOCK_TOKENS,), jnp.inf, F32), row_layout),
             with_layout(jnp.zeros((BLOCK_TOKENS,), jnp.int32), row_layout))
    best, best_ids = plgpu.emit_pipeline(
        code_tile,
        grid=(codes_gmem.shape[1] // block_codes,),
        in_specs=[
            plgpu.BlockSpec((codes_gmem.shape[0], block_codes), lambda k: (0, k),
                            transforms=_smem_transforms()),
            plgpu.BlockSpec((block_codes,), lambda k: (k,)),
        ],
        max_concurrent_steps=2,
        init_carry=start,
    )(codes_gmem, norms_gmem)
    ids_smem[...] = best_ids
    scores_smem[...] = best
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(ids_smem, ids_gmem.at[tokens])
    plgpu.copy_smem_to_gmem(scores_smem, scores_gmem.at[tokens])
    plgpu.wait_smem_to_gmem(0)

  pl.run_scoped(
      scoped,
      plgpu.SMEM((BLOCK_TOKENS, x_gmem.shape[1]), x_gmem.dtype, transforms=_smem_transforms()),
      plgpu.SMEM((BLOCK_TOKENS,), jnp.int32),
      plgpu.SMEM((BLOCK_TOKENS,), F32),
      plgpu.Barrier(num_arrivals=1),
  )


def nearest_code(x, codebook, *, block_codes=128, interpret=None):
  """(ids int32 [N], distances float32 [N]) for bf16 x [N, D], codebook [K, D], metric "l2".

  `interpret=interpret_params()` runs it on CPU. Inputs unchecked (see `suits`).
  """
  num_tokens, dim = x.shape
  num_codes = codebook.shape[0]
  x32, codebook32 = reference.prepare(x, codebook, "l2")
  code_norms = reference.squared_norms(codebook32)
  padded_tokens = round_up(num_tokens, BLOCK_TOKENS)
  padded_codes = round_up(num_codes, block_codes)
  padded_dim = round_up(dim, DIM_MULTIPLE)
  tokens = pad_axis(pad_axis(x, 0, padded_tokens), 1, padded_dim)
  # Codes as [D, K]: wgmma's right operand without a transposed view, which the interpreter
  # cannot follow.
  codes = pad_axis(pad_axis(codebook, 0, padded_codes), 1, padded_dim).T
  code_norms = pad_axis(code_norms, 0, padded_codes)
  ids, scores = plgpu.kernel(
      functools.partial(_search, num_codes=num_codes, block_codes=block_codes,
                        interpreting=bool(interpret)),
      out_type=(jax.ShapeDtypeStruct((padded_tokens,), jnp.int32),
                jax.ShapeDtypeStruct((padded_tokens,), F32)),
      grid=(padded_tokens // BLOCK_TOKENS,),
      grid_names=("tokens",),
      interpret=interpret,
  )(tokens, codes, code_norms)
  ids, scores = ids[:num_tokens], scores[:num_tokens]
  return ids, reference.distances_from_scores(x32, scores, "l2")
