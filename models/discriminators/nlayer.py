"""The TiTok stage-2 PatchGAN discriminator (1d-tokenizer `modeling/modules/discriminator.py`).

conv 5x5 -> LeakyReLU(0.1) -> `num_stages` x [conv 3x3, blur-pool /2, GroupNorm(32), LeakyReLU]
-> adaptive max-pool to 16x16 -> conv 1x1 -> LeakyReLU -> conv 5x5 to one logit per cell.

Facts reproduced from the original:
  * every conv has stride 1 and TF-style SAME padding (`Conv2dSame`), which lax 'SAME' equals;
  * the blur is a depthwise stride-2 conv with the normalised outer product of (1,3,3,1)
    (sum 1), zero padding; its SAME padding is always computed for a 4-tap kernel, whatever
    `blur_kernel_size` is (so 3/5-tap blurs do not halve the size exactly);
  * GroupNorm keeps torch's default eps 1e-5 (not the 1e-6 of the MaskGIT CNN);
  * `AdaptiveMaxPool2d((16, 16))` with torch's bins [floor(i*n/16), ceil((i+1)*n/16)): a max
    over 2x2 for 256 px inputs, a nearest x2 upsampling for 64 px ones.
Inputs are NHWC in the range the loss feeds: images and raw (unclamped) reconstructions in
[0, 1], not rescaled. The official loss runs it in float32 (autocast disabled). Initialisation
follows torch's defaults (uniform +-1/sqrt(fan_in) for conv kernels and biases).
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes

GROUPNORM_EPS = 1e-5  # torch.nn.GroupNorm default
LEAKY_SLOPE = 0.1
BLUR_TAPS = {3: (1, 2, 1), 4: (1, 3, 3, 1), 5: (1, 4, 6, 4, 1)}


@dataclasses.dataclass(frozen=True)
class NLayerDiscriminatorConfig:
  num_channels: int = 3
  hidden_channels: int = 128
  num_stages: int = 3
  blur_resample: bool = True  # False: 2x2 average pooling
  blur_kernel_size: int = 4
  pool_size: int = 16  # AdaptiveMaxPool2d output (fixed in the original)

  def __post_init__(self):
    if self.num_stages < 1:
      raise ValueError("the discriminator needs at least one stage")
    if self.blur_resample and self.blur_kernel_size not in BLUR_TAPS:
      raise ValueError(f"blur_kernel_size must be one of {sorted(BLUR_TAPS)}; "
                       f"got {self.blur_kernel_size}")
    if self.hidden_channels % 32:
      raise ValueError(f"hidden_channels must be a multiple of 32 (GroupNorm(32)); "
                       f"got {self.hidden_channels}")

  @property
  def stage_channels(self) -> tuple[int, ...]:
    """Output channels of the stages: hidden * (1, 2, 4, ...)."""
    return tuple(self.hidden_channels * 2**i for i in range(self.num_stages))


def blur_kernel(size: int) -> np.ndarray:
  """The official [size, size] blur: outer product of the binomial taps, normalised to sum 1."""
  taps = np.asarray(BLUR_TAPS[size], np.float32)
  k = taps[None, :] * taps[:, None]
  return k / k.sum()


def _torch_uniform(fan_in):
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def conv(cin, cout, kernel, *, rngs, dtype=None):
  fan_in = cin * kernel * kernel
  return nnx.Conv(
      cin, cout, (kernel, kernel), padding="SAME", dtype=dtype, rngs=rngs,
      kernel_init=_torch_uniform(fan_in), bias_init=_torch_uniform(fan_in),
      kernel_metadata=axes(None, None, "conv_in", "conv_out"), bias_metadata=axes("conv_out"))


def _same_pad(size: int) -> tuple[int, int]:
  """BlurBlock's padding: TF SAME for a 4-tap stride-2 window (k=4 is hard-coded upstream)."""
  total = max((math.ceil(size / 2) - 1) * 2 + 4 - size, 0)
  return total // 2, total - total // 2


def blur_downsample(x, size: int):
  """Depthwise stride-2 blur of NHWC `x` with zero padding, as the official BlurBlock.

  The blur is separable, so it runs as weighted sums of strided slices along H, then W:
  XLA's CPU backward of a depthwise convolution is ~10x slower than this.
  """
  taps = np.asarray(BLUR_TAPS[size], np.float32)
  taps = taps / taps.sum()
  for axis in (1, 2):
    pad = [(0, 0)] * x.ndim
    pad[axis] = _same_pad(x.shape[axis])
    xp = jnp.pad(x, pad)
    out = (xp.shape[axis] - size) // 2 + 1  # a VALID stride-2 window over the padded input
    x = sum(float(t) * jax.lax.slice_in_dim(xp, j, j + 2 * (out - 1) + 1, 2, axis)
            for j, t in enumerate(taps))
  return x


def avg_pool2(x):
  """torch AvgPool2d(2, 2): floor mode, a trailing odd row/column is dropped."""
  b, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _adaptive_max_1d(x, axis: int, out: int):
  n = x.shape[axis]
  starts = [i * n // out for i in range(out)]
  ends = [-(-(i + 1) * n // out) for i in range(out)]
  width = max(e - s for s, e in zip(starts, ends))
  # Pad short bins by repeating their last index; it does not change a max.
  idx = np.asarray([[min(s + j, e - 1) for j in range(width)] for s, e in zip(starts, ends)])
  return jnp.take(x, idx, axis=axis).max(axis=axis + 1)


def adaptive_max_pool(x, out: int):
  """torch AdaptiveMaxPool2d((out, out)) on NHWC; bins may overlap or repeat (upsampling)."""
  return _adaptive_max_1d(_adaptive_max_1d(x, 1, out), 2, out)


class Stage(nnx.Module):

  def __init__(self, cin, cout, cfg: NLayerDiscriminatorConfig, *, rngs, dtype=None):
    self.conv = conv(cin, cout, 3, rngs=rngs, dtype=dtype)
    self.norm = nnx.GroupNorm(
        cout, num_groups=32, epsilon=GROUPNORM_EPS, use_fast_variance=False, dtype=dtype,
        rngs=rngs, scale_metadata=axes("norm"), bias_metadata=axes("norm"))
    self.blur_size = cfg.blur_kernel_size if cfg.blur_resample else None

  def __call__(self, x):
    x = self.conv(x)
    x = avg_pool2(x) if self.blur_size is None else blur_downsample(x, self.blur_size)
    return jax.nn.leaky_relu(self.norm(x), LEAKY_SLOPE)


class NLayerDiscriminator(nnx.Module):
  """[B, H, W, C] -> logits [B, 16, 16, 1] (hinge-GAN real/fake scores per cell)."""

  def __init__(self, config: NLayerDiscriminatorConfig = NLayerDiscriminatorConfig(), *,
               rngs: nnx.Rngs, dtype=None):
    self.config = config
    hid, chans = config.hidden_channels, config.stage_channels
    self.conv_in = conv(config.num_channels, hid, 5, rngs=rngs, dtype=dtype)
    ins = (hid,) + chans[:-1]
    self.blocks = nnx.List(
        [Stage(cin, cout, config, rngs=rngs, dtype=dtype) for cin, cout in zip(ins, chans)])
    self.conv_mid = conv(chans[-1], chans[-1], 1, rngs=rngs, dtype=dtype)
    self.conv_out = conv(chans[-1], 1, 5, rngs=rngs, dtype=dtype)

  def __call__(self, x):
    if x.ndim != 4 or x.shape[-1] != self.config.num_channels:
      raise ValueError(f"discriminator input must be NHWC [B, H, W, {self.config.num_channels}]; "
                       f"got shape {x.shape}")
    h = jax.nn.leaky_relu(self.conv_in(x), LEAKY_SLOPE)
    for block in self.blocks:
      h = block(h)
    h = adaptive_max_pool(h, self.config.pool_size)
    return self.conv_out(jax.nn.leaky_relu(self.conv_mid(h), LEAKY_SLOPE))
