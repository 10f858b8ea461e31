"""The part of LPIPS v0.1 (Zhang et al. 2018) that does not depend on the trunk, as the `lpips`
package computes it; models/perception/vgg_lpips.py and alex_lpips.py add the trunks.

Inputs are NHWC in [0, 1], the zoo's convention. LPIPS was calibrated on [-1, 1], so both images
are first mapped x -> 2x - 1 (lpips' `normalize=True`), then shifted and scaled per channel by
the ScalingLayer constants. For each trunk layer: unit-normalise the features over channels (eps
1e-10 is added to the norm, outside the sqrt), square the difference, weight the channels by
the 1x1 bias-free `lin` conv (its dropout is off in eval), average over space. The distance is
the sum over the layers, one value per image.
"""
import dataclasses

import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
NORMALIZE_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class LPIPSConfig:
  """LPIPS v0.1 has no free choices but the trunk: "vgg16" (vgg_lpips) or "alexnet" (alex_lpips)."""
  trunk: str = "vgg16"


def unit_normalize(f):
  sumsq = jnp.sum(jnp.square(f), axis=-1, keepdims=True)
  # The floor keeps the gradient of sqrt finite at an all-zero feature vector (the torch original
  # gives NaN there); it moves the denominator by at most 1e-15, a 1e-5 fraction of the eps.
  return f / (jnp.sqrt(jnp.maximum(sumsq, 1e-30)) + NORMALIZE_EPS)


def lin_layers(channels, *, rngs: nnx.Rngs) -> nnx.List:
  """One bias-free 1x1 conv per trunk layer, written as a Dense over channels."""
  return nnx.List([
      nnx.Linear(c, 1, use_bias=False, rngs=rngs, kernel_metadata=axes("conv_in", None))
      for c in channels])


def lpips_layers(trunk, lins, x0, x1, *, min_size: int, name: str):
  """[B, L] per-layer LPIPS terms; `trunk(x)` returns the L feature maps of an NHWC batch."""
  x0, x1 = jnp.asarray(x0), jnp.asarray(x1)
  if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[-1] != 3:
    raise ValueError(f"LPIPS compares two NHWC RGB batches of one shape; got {x0.shape} and "
                     f"{x1.shape}")
  if min(x0.shape[1:3]) < min_size:
    raise ValueError(f"{name} needs images of at least {min_size}x{min_size}, got "
                     f"{x0.shape[1]}x{x0.shape[2]}")
  x = jnp.concatenate([x0, x1]).astype(jnp.float32) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
  x = (x - jnp.asarray(LPIPS_SHIFT)) / jnp.asarray(LPIPS_SCALE)
  b = x0.shape[0]
  terms = []
  for feats, lin in zip(trunk(x), lins):
    feats = unit_normalize(feats.astype(jnp.float32))
    diff = jnp.square(feats[:b] - feats[b:])
    terms.append(jnp.mean(lin(diff)[..., 0], axis=(1, 2)))
  return jnp.stack(terms, axis=-1)
