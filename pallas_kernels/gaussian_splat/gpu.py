"""Gaussian splatting for GPUs: Pallas (Triton) forward and backward kernels.

A Triton grid has no sequential axis to accumulate over, so each program owns its output
and loops over the other operand in tiles:
  * forward: one program per (image, pixel tile) loops over Gaussian tiles, accumulating
    features^T [C, G] @ weights [G, P] in registers;
  * backward: one program per (image, Gaussian tile) loops over pixel tiles, accumulating the
    feature and geometry gradients; no atomics.
Tiles where no Gaussian's truncation box meets the pixel tile skip their compute.
Triton needs power-of-two block shapes: Gaussians, pixels and channels are padded to powers
of two by the dispatcher.

Validated on CPU only, in Pallas interpret mode against `splat_reference`; it has not been
compiled for or run on a GPU.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from pallas_kernels.gaussian_splat import tiles
from pallas_kernels.gaussian_splat.tiles import PARAM_LANES

BLOCK_GAUSSIANS = 64
BLOCK_PIXELS = 128
# Selects the Triton backend (the default for pallas_call on GPU may be Mosaic GPU).
_TRITON = pltriton.CompilerParams(num_warps=4, num_stages=1)


def _columns(params_ref, rows):
  return tuple(params_ref[rows, pl.ds(k, 1)] for k in range(5))  # [G, 1] each


def _pixel_rows(coords_ref, cols):
  return coords_ref[pl.ds(0, 1), cols], coords_ref[pl.ds(1, 1), cols]  # [1, P] each


def _forward_kernel(params_ref, feats_t_ref, coords_ref, out_ref, *, dmax, block_g):
  px, py = _pixel_rows(coords_ref, slice(None))

  def body(gi, acc):
    rows = pl.ds(gi * block_g, block_g)
    columns = _columns(params_ref, rows)

    def add(acc):
      weight, _, _ = tiles.tile_terms(columns, px, py, dmax)
      return acc + tiles.dot(feats_t_ref[:, rows], weight, ((1,), (0,)))
    return jax.lax.cond(tiles.tile_is_live(columns, px, py, dmax), add, lambda a: a, acc)

  num_tiles = params_ref.shape[0] // block_g
  out_ref[...] = jax.lax.fori_loop(0, num_tiles, body, jnp.zeros(out_ref.shape, jnp.float32))


def _backward_kernel(params_ref, feats_ref, coords_ref, dgrid_ref, dparams_ref, dfeats_ref, *,
                     dmax, block_p):
  columns = _columns(params_ref, slice(None))
  feats = feats_ref[...]

  def body(pi, carry):
    cols = pl.ds(pi * block_p, block_p)
    px, py = _pixel_rows(coords_ref, cols)

    def add(carry):
      d_params, d_feats = carry
      weight, dx, dy = tiles.tile_terms(columns, px, py, dmax)
      dgrid = dgrid_ref[:, cols]
      d_feats = d_feats + tiles.dot(weight, dgrid, ((1,), (1,)))
      upstream = tiles.dot(feats, dgrid, ((1,), (0,)))
      grads = tiles.geometry_gradients(columns, weight, dx, dy, upstream)
      lanes = jax.lax.broadcasted_iota(jnp.int32, d_params.shape, 1)
      for k, grad in enumerate(grads):  # no lane slices in Triton: select into lane k
        d_params = d_params + jnp.where(lanes == k, grad, 0.0)
      return d_params, d_feats
    return jax.lax.cond(tiles.tile_is_live(columns, px, py, dmax), add, lambda c: c, carry)

  num_tiles = coords_ref.shape[1] // block_p
  init = (jnp.zeros(dparams_ref.shape, jnp.float32), jnp.zeros(dfeats_ref.shape, jnp.float32))
  d_params, d_feats = jax.lax.fori_loop(0, num_tiles, body, init)
  dparams_ref[...] = d_params
  dfeats_ref[...] = d_feats


def splat_forward(params, feats, coords, *, dmax, block_g=BLOCK_GAUSSIANS,
                  block_p=BLOCK_PIXELS, interpret=False):
  """params [B, Npad, 8], feats [B, Npad, C], coords [2, Ppad] -> grid [B, C, Ppad]."""
  b, n, c = feats.shape
  p = coords.shape[1]
  return pl.pallas_call(
      functools.partial(_forward_kernel, dmax=dmax, block_g=block_g),
      grid=(b, p // block_p),
      in_specs=[pl.BlockSpec((None, n, PARAM_LANES), lambda bi, pi: (bi, 0, 0)),
                pl.BlockSpec((None, c, n), lambda bi, pi: (bi, 0, 0)),
                pl.BlockSpec((2, block_p), lambda bi, pi: (0, pi))],
      out_specs=pl.BlockSpec((None, c, block_p), lambda bi, pi: (bi, 0, pi)),
      out_shape=jax.ShapeDtypeStruct((b, c, p), jnp.float32),
      compiler_params=_TRITON,
      interpret=interpret,
  )(params, jnp.swapaxes(feats, 1, 2), coords)


def splat_backward(params, feats, coords, dgrid, *, dmax, block_g=BLOCK_GAUSSIANS,
                   block_p=BLOCK_PIXELS, interpret=False):
  """(d params [B, Npad, 8], d feats [B, Npad, C]) for dgrid [B, C, Ppad]."""
  b, n, c = feats.shape
  p = coords.shape[1]
  return pl.pallas_call(
      functools.partial(_backward_kernel, dmax=dmax, block_p=block_p),
      grid=(b, n // block_g),
      in_specs=[pl.BlockSpec((None, block_g, PARAM_LANES), lambda bi, gi: (bi, gi, 0)),
                pl.BlockSpec((None, block_g, c), lambda bi, gi: (bi, gi, 0)),
                pl.BlockSpec((2, p), lambda bi, gi: (0, 0)),
                pl.BlockSpec((None, c, p), lambda bi, gi: (bi, 0, 0))],
      out_specs=[pl.BlockSpec((None, block_g, PARAM_LANES), lambda bi, gi: (bi, gi, 0)),
                 pl.BlockSpec((None, block_g, c), lambda bi, gi: (bi, gi, 0))],
      out_shape=[jax.ShapeDtypeStruct((b, n, PARAM_LANES), jnp.float32),
                 jax.ShapeDtypeStruct((b, n, c), jnp.float32)],
      compiler_params=_TRITON,
      interpret=interpret,
  )(params, feats, coords, dgrid)
