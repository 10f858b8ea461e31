"""LPIPS v0.1 with the VGG16 trunk (Zhang et al. 2018), as the `lpips` package and TiTok's
training loss (modeling/modules/lpips.py) compute it.

Inputs are NHWC in [0, 1], the zoo's convention. LPIPS was calibrated on [-1, 1], so both images
are first mapped x -> 2x - 1 (what lpips' `normalize=True` and TiTok's `LPIPS.forward` do), then
shifted and scaled per channel by the ScalingLayer constants. For each of relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3 of torchvision's VGG16: unit-normalise the features over channels
(eps 1e-10 is added to the norm, outside the sqrt), square the difference, weight the channels by
the 1x1 bias-free `lin` conv, average over space. The distance is the sum over the five layers,
one value per image.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes

# Channels of the convolutions of each VGG16 stage; a 2x2 max-pool sits between stages.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
NORMALIZE_EPS = 1e-10
MIN_SIZE = 16  # relu5_3 is at 1/16 resolution


@dataclasses.dataclass(frozen=True)
class LPIPSConfig:
  """LPIPS v0.1 over VGG16 has no free choices; the config exists for the registry."""
  trunk: str = "vgg16"


class VGG16Features(nnx.Module):
  """torchvision's VGG16 `features` up to relu5_3; returns the last ReLU output of each stage."""

  def __init__(self, *, rngs: nnx.Rngs, dtype=None):
    convs, cin = [], 3
    for stage in VGG16_STAGES:
      for cout in stage:
        convs.append(nnx.Conv(
            cin, cout, (3, 3), padding=((1, 1), (1, 1)), dtype=dtype, rngs=rngs,
            kernel_metadata=axes(None, None, "conv_in", "conv_out"),
            bias_metadata=axes("conv_out")))
        cin = cout
    self.convs = nnx.List(convs)

  def __call__(self, x) -> list:
    outs, i = [], 0
    for s, stage in enumerate(VGG16_STAGES):
      if s:  # MaxPool2d(2, 2): floor mode, no padding
        x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
      for _ in stage:
        x = jax.nn.relu(self.convs[i](x))
        i += 1
      outs.append(x)
    return outs


def _unit_normalize(f):
  sumsq = jnp.sum(jnp.square(f), axis=-1, keepdims=True)
  # The floor keeps the gradient of sqrt finite at an all-zero feature vector (the torch original
  # gives NaN there); it moves the denominator by at most 1e-15, a 1e-5 fraction of the eps.
  return f / (jnp.sqrt(jnp.maximum(sumsq, 1e-30)) + NORMALIZE_EPS)


class LPIPS(nnx.Module):
  """`lpips(x0, x1)` -> [B] distances; `lpips.layers(x0, x1)` -> [B, 5] per-layer terms."""

  def __init__(self, config: LPIPSConfig = LPIPSConfig(), *, rngs: nnx.Rngs, dtype=None):
    if config.trunk != "vgg16":
      raise ValueError(f"LPIPS here has the VGG16 trunk only, got trunk={config.trunk!r}")
    self.config = config
    self.net = VGG16Features(rngs=rngs, dtype=dtype)
    self.lin = nnx.List([
        nnx.Linear(stage[-1], 1, use_bias=False, rngs=rngs, kernel_metadata=axes("conv_in", None))
        for stage in VGG16_STAGES])

  def layers(self, x0, x1):
    x0, x1 = jnp.asarray(x0), jnp.asarray(x1)
    if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[-1] != 3:
      raise ValueError(f"LPIPS compares two NHWC RGB batches of one shape; got {x0.shape} and "
                       f"{x1.shape}")
    if min(x0.shape[1:3]) < MIN_SIZE:
      raise ValueError(f"LPIPS-VGG needs images of at least {MIN_SIZE}x{MIN_SIZE}, got "
                       f"{x0.shape[1]}x{x0.shape[2]}")
    x = jnp.concatenate([x0, x1]).astype(jnp.float32) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
    x = (x - jnp.asarray(LPIPS_SHIFT)) / jnp.asarray(LPIPS_SCALE)
    b = x0.shape[0]
    terms = []
    for feats, lin in zip(self.net(x), self.lin):
      feats = _unit_normalize(feats.astype(jnp.float32))
      diff = jnp.square(feats[:b] - feats[b:])
      terms.append(jnp.mean(lin(diff)[..., 0], axis=(1, 2)))
    return jnp.stack(terms, axis=-1)

  def __call__(self, x0, x1):
    return jnp.sum(self.layers(x0, x1), axis=-1)
