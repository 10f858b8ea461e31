"""Gaussian splatting for TPU: Pallas (Mosaic) forward and backward kernels.

Forward: grid (B, pixel tiles, Gaussian tiles), the Gaussian axis last and "arbitrary"; each
step computes a [G, P] weight tile on the VPU and adds features^T [C, G] @ weights [G, P] on
the MXU into the resident [C, P] output block.

Backward: grid (B, Gaussian tiles, pixel tiles), the pixel axis last; it accumulates the
feature gradient weights [G, P] . dgrid [C, P]^T and the five geometry gradients (lane sums
of [G, P] terms) into resident [G, C] and [G, 8] blocks. It replaces gs.cu's backward, which
runs one thread per Gaussian over every pixel of the grid.

Both skip the compute of tiles where no Gaussian's truncation box meets the pixel tile
(`tiles.tile_is_live`): most tiles once Gaussians are small and many.

Validated on CPU in Pallas TPU interpret mode against `splat_reference` and its autodiff
gradients (tests/test_kernels_gaussian_splat.py), and lowered with `jax.export(...,
platforms=["tpu"])`; it has not run on TPU hardware.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.gaussian_splat import tiles
from pallas_kernels.gaussian_splat.tiles import PARAM_LANES

BLOCK_GAUSSIANS = 128
BLOCK_PIXELS = 512
_SEMANTICS = pltpu.CompilerParams(dimension_semantics=("parallel", "parallel", "arbitrary"))


def _tile(params_ref, coords_ref):
  params, coords = params_ref[...], coords_ref[...]
  return tuple(params[:, k:k + 1] for k in range(5)), coords[0:1, :], coords[1:2, :]


def _forward_kernel(params_ref, feats_t_ref, coords_ref, out_ref, *, dmax):
  @pl.when(pl.program_id(2) == 0)
  def _():
    out_ref[...] = jnp.zeros_like(out_ref)

  columns, px, py = _tile(params_ref, coords_ref)

  @pl.when(tiles.tile_is_live(columns, px, py, dmax))
  def _():
    weight, _, _ = tiles.tile_terms(columns, px, py, dmax)
    out_ref[...] += tiles.dot(feats_t_ref[...], weight, ((1,), (0,)))


def _backward_kernel(params_ref, feats_ref, coords_ref, dgrid_ref, dparams_ref, dfeats_ref, *,
                     dmax):
  @pl.when(pl.program_id(2) == 0)
  def _():
    dparams_ref[...] = jnp.zeros_like(dparams_ref)
    dfeats_ref[...] = jnp.zeros_like(dfeats_ref)

  columns, px, py = _tile(params_ref, coords_ref)

  @pl.when(tiles.tile_is_live(columns, px, py, dmax))
  def _():
    weight, dx, dy = tiles.tile_terms(columns, px, py, dmax)
    dgrid = dgrid_ref[...]  # [C, P]
    dfeats_ref[...] += tiles.dot(weight, dgrid, ((1,), (1,)))  # [G, C]
    upstream = tiles.dot(feats_ref[...], dgrid, ((1,), (0,)))  # [G, P]
    for k, grad in enumerate(tiles.geometry_gradients(columns, weight, dx, dy, upstream)):
      dparams_ref[:, k:k + 1] += grad


def splat_forward(params, feats, coords, *, dmax, block_g=BLOCK_GAUSSIANS,
                  block_p=BLOCK_PIXELS, interpret=None):
  """params [B, Npad, 8], feats [B, Npad, C], coords [2, Ppad] -> grid [B, C, Ppad]."""
  b, n, c = feats.shape
  p = coords.shape[1]
  return pl.pallas_call(
      functools.partial(_forward_kernel, dmax=dmax),
      grid=(b, p // block_p, n // block_g),
      in_specs=[pl.BlockSpec((None, block_g, PARAM_LANES), lambda bi, pi, gi: (bi, gi, 0)),
                pl.BlockSpec((None, c, block_g), lambda bi, pi, gi: (bi, 0, gi)),
                pl.BlockSpec((2, block_p), lambda bi, pi, gi: (0, pi))],
      out_specs=pl.BlockSpec((None, c, block_p), lambda bi, pi, gi: (bi, 0, pi)),
      out_shape=jax.ShapeDtypeStruct((b, c, p), jnp.float32),
      compiler_params=_SEMANTICS,
      interpret=interpret,
  )(params, jnp.swapaxes(feats, 1, 2), coords)


def splat_backward(params, feats, coords, dgrid, *, dmax, block_g=BLOCK_GAUSSIANS,
                   block_p=BLOCK_PIXELS, interpret=None):
  """(d params [B, Npad, 8], d feats [B, Npad, C]) for dgrid [B, C, Ppad]."""
  b, n, c = feats.shape
  p = coords.shape[1]
  return pl.pallas_call(
      functools.partial(_backward_kernel, dmax=dmax),
      grid=(b, n // block_g, p // block_p),
      in_specs=[pl.BlockSpec((None, block_g, PARAM_LANES), lambda bi, gi, pi: (bi, gi, 0)),
                pl.BlockSpec((None, block_g, c), lambda bi, gi, pi: (bi, gi, 0)),
                pl.BlockSpec((2, block_p), lambda bi, gi, pi: (0, pi)),
                pl.BlockSpec((None, c, block_p), lambda bi, gi, pi: (bi, 0, pi))],
      out_specs=[pl.BlockSpec((None, block_g, PARAM_LANES), lambda bi, gi, pi: (bi, gi, 0)),
                 pl.BlockSpec((None, block_g, c), lambda bi, gi, pi: (bi, gi, 0))],
      out_shape=[jax.ShapeDtypeStruct((b, n, PARAM_LANES), jnp.float32),
                 jax.ShapeDtypeStruct((b, n, c), jnp.float32)],
      compiler_params=_SEMANTICS,
      interpret=interpret,
  )(params, feats, coords, dgrid)
