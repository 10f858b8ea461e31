"""LPIPS v0.1 with the AlexNet trunk, the `lpips` package's default (`lpips.LPIPS(net="alex")`).

The trunk is torchvision's AlexNet `features` (the "one weird trick" variant, 64-192-384-256-256
channels); the layers compared are relu1..relu5, i.e. the ReLU after each of its five convs.
Input scaling, normalisation and the lin head: models/perception/lpips_head.py.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from models.perception.lpips_head import LPIPSConfig, lin_layers, lpips_layers

# (out channels, kernel, stride, padding) of each conv; a 3x3 stride-2 max-pool follows the
# first two.
ALEXNET_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
POOL_AFTER = (0, 1)
# The smallest side that leaves relu5 one pixel: conv1 gives floor((H - 7) / 4) + 1 >= 7, which
# the two pools take to 3 and then 1.
MIN_SIZE = 31


class AlexNetFeatures(nnx.Module):
  """torchvision's `alexnet().features` up to relu5; returns the five ReLU outputs."""

  def __init__(self, *, rngs: nnx.Rngs, dtype=None):
    convs, cin = [], 3
    for cout, k, stride, pad in ALEXNET_CONVS:
      convs.append(nnx.Conv(
          cin, cout, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
          dtype=dtype, rngs=rngs, kernel_metadata=axes(None, None, "conv_in", "conv_out"),
          bias_metadata=axes("conv_out")))
      cin = cout
    self.convs = nnx.List(convs)

  def __call__(self, x) -> list:
    outs = []
    for i, conv in enumerate(self.convs):
      if i - 1 in POOL_AFTER:  # MaxPool2d(3, 2): floor mode, no padding
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
      x = jax.nn.relu(conv(x))
      outs.append(x)
    return outs


class AlexLPIPS(nnx.Module):
  """`lpips(x0, x1)` -> [B] distances; `lpips.layers(x0, x1)` -> [B, 5] per-layer terms."""

  def __init__(self, config: LPIPSConfig = LPIPSConfig(trunk="alexnet"), *, rngs: nnx.Rngs,
               dtype=None):
    if config.trunk != "alexnet":
      raise ValueError(f"AlexLPIPS has the AlexNet trunk, got trunk={config.trunk!r} (the VGG16 "
                       "one is models.perception.vgg_lpips.LPIPS)")
    self.config = config
    self.net = AlexNetFeatures(rngs=rngs, dtype=dtype)
    self.lin = lin_layers([c[0] for c in ALEXNET_CONVS], rngs=rngs)

  def layers(self, x0, x1):
    return lpips_layers(self.net, self.lin, x0, x1, min_size=MIN_SIZE, name="LPIPS-Alex")

  def __call__(self, x0, x1):
    return jnp.sum(self.layers(x0, x1), axis=-1)
