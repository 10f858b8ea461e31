"""LPIPS v0.1 with the VGG16 trunk (Zhang et al. 2018), as the `lpips` package and TiTok's
training loss (modeling/modules/lpips.py) compute it.

The trunk is torchvision's VGG16 up to relu5_3; the layers compared are relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3. Input scaling, normalisation and the lin head are shared with the
AlexNet variant: models/perception/lpips_head.py.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from models.perception.lpips_head import (  # pylint: disable=unused-import
    LPIPS_SCALE, LPIPS_SHIFT, NORMALIZE_EPS, LPIPSConfig, lin_layers, lpips_layers)
from models.perception.lpips_head import unit_normalize as _unit_normalize

# Channels of the convolutions of each VGG16 stage; a 2x2 max-pool sits between stages.
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
MIN_SIZE = 16  # relu5_3 is at 1/16 resolution


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


class LPIPS(nnx.Module):
  """`lpips(x0, x1)` -> [B] distances; `lpips.layers(x0, x1)` -> [B, 5] per-layer terms."""

  def __init__(self, config: LPIPSConfig = LPIPSConfig(), *, rngs: nnx.Rngs, dtype=None):
    if config.trunk != "vgg16":
      raise ValueError(f"this LPIPS has the VGG16 trunk, got trunk={config.trunk!r} (the AlexNet "
                       "one is models.perception.alex_lpips.AlexLPIPS)")
    self.config = config
    self.net = VGG16Features(rngs=rngs, dtype=dtype)
    self.lin = lin_layers([stage[-1] for stage in VGG16_STAGES], rngs=rngs)

  def layers(self, x0, x1):
    return lpips_layers(self.net, self.lin, x0, x1, min_size=MIN_SIZE, name="LPIPS-VGG")

  def __call__(self, x0, x1):
    return jnp.sum(self.layers(x0, x1), axis=-1)
