"""torchvision's ConvNeXt image classifier (Liu et al. 2022) in eval mode, NHWC -> logits.

TiTok's "convnext_s" perceptual loss compares the ImageNet logits of `convnext_small`
(IMAGENET1K_V1). Reproduced from torchvision: stem Conv 4x4/4 + LayerNorm; blocks of depthwise
Conv 7x7 (pad 3) -> LayerNorm(eps 1e-6) -> Linear 4x -> exact (erf) GELU -> Linear, times a
per-channel `layer_scale`, plus the input; between stages LayerNorm -> Conv 2x2/2; head: global
average pool -> LayerNorm -> Linear. Stochastic depth is identity (eval). Inputs are already
ImageNet-normalised (see zoo/train/perceptual_loss.py); any size of at least 32 works
(every stride floors, as in torch).
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes

LAYERNORM_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class ConvNeXtConfig:
  depths: tuple[int, ...] = (3, 3, 27, 3)  # convnext_small; tiny is (3, 3, 9, 3)
  dims: tuple[int, ...] = (96, 192, 384, 768)
  num_classes: int = 1000

  def __post_init__(self):  # lists from JSON configs; the config must stay hashable
    object.__setattr__(self, "depths", tuple(self.depths))
    object.__setattr__(self, "dims", tuple(self.dims))


def _norm(dim, *, rngs, dtype):
  return nnx.LayerNorm(dim, epsilon=LAYERNORM_EPS, use_fast_variance=False, dtype=dtype,
                       rngs=rngs, scale_metadata=axes("norm"), bias_metadata=axes("norm"))


def _conv(cin, cout, kernel, stride, *, rngs, dtype, groups=1, padding="VALID"):
  return nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride), padding=padding,
                  feature_group_count=groups, dtype=dtype, rngs=rngs,
                  kernel_metadata=axes(None, None, "conv_in", "conv_out"),
                  bias_metadata=axes("conv_out"))


class CNBlock(nnx.Module):

  def __init__(self, dim: int, *, rngs: nnx.Rngs, dtype=None):
    self.dwconv = _conv(dim, dim, 7, 1, groups=dim, padding=((3, 3), (3, 3)), rngs=rngs,
                        dtype=dtype)
    self.norm = _norm(dim, rngs=rngs, dtype=dtype)
    self.fc1 = nnx.Linear(dim, 4 * dim, dtype=dtype, rngs=rngs,
                          kernel_metadata=axes("embed", "mlp"), bias_metadata=axes("mlp"))
    self.fc2 = nnx.Linear(4 * dim, dim, dtype=dtype, rngs=rngs,
                          kernel_metadata=axes("mlp", "embed"), bias_metadata=axes("embed"))
    self.layer_scale = nnx.Param(jnp.full((dim,), 1e-6), **axes("embed"))  # torchvision's init

  def __call__(self, x):
    h = self.fc2(jax.nn.gelu(self.fc1(self.norm(self.dwconv(x))), approximate=False))
    return x + self.layer_scale[...] * h


class Downsample(nnx.Module):
  """LayerNorm then Conv 2x2 stride 2 (torchvision `features.{2,4,6}`)."""

  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, dtype=None):
    self.norm = _norm(cin, rngs=rngs, dtype=dtype)
    self.conv = _conv(cin, cout, 2, 2, rngs=rngs, dtype=dtype)

  def __call__(self, x):
    return self.conv(self.norm(x))


class ConvNeXt(nnx.Module):
  """[B, H, W, 3] ImageNet-normalised -> [B, num_classes] logits."""

  def __init__(self, config: ConvNeXtConfig = ConvNeXtConfig(), *, rngs: nnx.Rngs, dtype=None):
    if len(config.depths) != len(config.dims):
      raise ValueError(f"ConvNeXt needs one depth per stage: {config.depths} vs {config.dims}")
    self.config = config
    dims = config.dims
    self.stem_conv = _conv(3, dims[0], 4, 4, rngs=rngs, dtype=dtype)
    self.stem_norm = _norm(dims[0], rngs=rngs, dtype=dtype)
    self.downsample = nnx.List(
        [Downsample(dims[i - 1], dims[i], rngs=rngs, dtype=dtype) for i in range(1, len(dims))])
    self.stages = nnx.List([
        nnx.List([CNBlock(dim, rngs=rngs, dtype=dtype) for _ in range(depth)])
        for depth, dim in zip(config.depths, dims)])
    self.head_norm = _norm(dims[-1], rngs=rngs, dtype=dtype)
    self.head = nnx.Linear(dims[-1], config.num_classes, dtype=dtype, rngs=rngs,
                           kernel_metadata=axes("embed", None), bias_metadata=axes(None))

  def __call__(self, x):
    x = jnp.asarray(x)
    stride = 4 * 2 ** (len(self.config.dims) - 1)
    if x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[1:3]) < stride:
      raise ValueError(f"ConvNeXt takes NHWC RGB images of at least {stride}x{stride}, got "
                       f"shape {x.shape}")
    x = self.stem_norm(self.stem_conv(x))
    for i, stage in enumerate(self.stages):
      if i:
        x = self.downsample[i - 1](x)
      for block in stage:
        x = block(x)
    return self.head(self.head_norm(jnp.mean(x, axis=(1, 2))))
