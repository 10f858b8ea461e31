"""The MaskGIT-VQGAN convolutional encoder and decoder (google-research/maskgit, via open-muse).

Facts reproduced from the original: TF "SAME" padding (all convolutions have stride 1, so
lax's 'SAME' pads exactly as TF), GroupNorm(32, eps 1e-6), SiLU, bias-free residual convs,
avg-pool downsampling, nearest x2 upsampling followed by a 3x3 conv, and the shortcut quirk:
when a residual block changes its channel count, the 1x1 `nin_shortcut` is applied to the
block's *output*, not to its input. Images are NHWC.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes

GROUPNORM_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class MaskGitCnnConfig:
  hidden_channels: int = 128
  channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  z_channels: int = 256
  num_channels: int = 3

  def __post_init__(self):
    object.__setattr__(self, "channel_mult", tuple(self.channel_mult))  # lists from JSON

  @classmethod
  def coerce(cls, value) -> "MaskGitCnnConfig":
    """A config from itself or a dict of fields (config files and config.json give dicts)."""
    return value if isinstance(value, cls) else cls(**dict(value))


def conv(cin, cout, kernel, *, rngs, use_bias=True, dtype=None):
  return nnx.Conv(
      cin, cout, (kernel, kernel), padding="SAME", use_bias=use_bias, dtype=dtype, rngs=rngs,
      kernel_metadata=axes(None, None, "conv_in", "conv_out"), bias_metadata=axes("conv_out"))


def group_norm(channels, *, rngs, dtype=None):
  return nnx.GroupNorm(
      channels, num_groups=32, epsilon=GROUPNORM_EPS, use_fast_variance=False, dtype=dtype,
      rngs=rngs, scale_metadata=axes("norm"), bias_metadata=axes("norm"))


class ResnetBlock(nnx.Module):

  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs, dtype=None):
    self.norm1 = group_norm(cin, rngs=rngs, dtype=dtype)
    self.conv1 = conv(cin, cout, 3, use_bias=False, rngs=rngs, dtype=dtype)
    self.norm2 = group_norm(cout, rngs=rngs, dtype=dtype)
    self.conv2 = conv(cout, cout, 3, use_bias=False, rngs=rngs, dtype=dtype)
    # Shape [out, out]: the original applies it to the block output (see module docstring).
    self.nin_shortcut = (
        conv(cout, cout, 1, use_bias=False, rngs=rngs, dtype=dtype) if cin != cout else None)

  def __call__(self, x):
    h = self.conv1(jax.nn.silu(self.norm1(x)))
    h = self.conv2(jax.nn.silu(self.norm2(h)))
    residual = x if self.nin_shortcut is None else self.nin_shortcut(h)
    return h + residual


class DownBlock(nnx.Module):

  def __init__(self, cin, cout, num_blocks, downsample, *, rngs, dtype=None):
    self.block = nnx.List(
        [ResnetBlock(cin if i == 0 else cout, cout, rngs=rngs, dtype=dtype)
         for i in range(num_blocks)])
    self.downsample = downsample

  def __call__(self, x):
    for res_block in self.block:
      x = res_block(x)
    if self.downsample:
      b, h, w, c = x.shape
      x = x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return x


class UpBlock(nnx.Module):

  def __init__(self, cin, cout, num_blocks, upsample, *, rngs, dtype=None):
    self.block = nnx.List(
        [ResnetBlock(cin if i == 0 else cout, cout, rngs=rngs, dtype=dtype)
         for i in range(num_blocks)])
    self.upsample_conv = conv(cout, cout, 3, rngs=rngs, dtype=dtype) if upsample else None

  def __call__(self, x):
    for res_block in self.block:
      x = res_block(x)
    if self.upsample_conv is not None:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = self.upsample_conv(x)
    return x


class MaskGitEncoder(nnx.Module):
  """[B, H, W, 3] -> [B, H/16, W/16, z_channels] (with the default 5 levels)."""

  def __init__(self, cfg: MaskGitCnnConfig, *, rngs: nnx.Rngs, dtype=None):
    hid, mult = cfg.hidden_channels, cfg.channel_mult
    self.conv_in = conv(cfg.num_channels, hid, 3, use_bias=False, rngs=rngs, dtype=dtype)
    ins = (1,) + tuple(mult)
    self.down = nnx.List([
        DownBlock(hid * ins[i], hid * mult[i], cfg.num_res_blocks, i != len(mult) - 1,
                  rngs=rngs, dtype=dtype)
        for i in range(len(mult))])
    mid = hid * mult[-1]
    self.mid = nnx.List(
        [ResnetBlock(mid, mid, rngs=rngs, dtype=dtype) for _ in range(cfg.num_res_blocks)])
    self.norm_out = group_norm(mid, rngs=rngs, dtype=dtype)
    self.conv_out = conv(mid, cfg.z_channels, 1, rngs=rngs, dtype=dtype)

  def __call__(self, x):
    x = self.conv_in(x)
    for block in self.down:
      x = block(x)
    for block in self.mid:
      x = block(x)
    return self.conv_out(jax.nn.silu(self.norm_out(x)))


class MaskGitDecoder(nnx.Module):
  """[B, h, w, z_channels] -> [B, 16h, 16w, 3]; `up[0]` is the full-resolution level."""

  def __init__(self, cfg: MaskGitCnnConfig, *, rngs: nnx.Rngs, dtype=None):
    hid, mult = cfg.hidden_channels, cfg.channel_mult
    top = hid * mult[-1]
    self.conv_in = conv(cfg.z_channels, top, 3, rngs=rngs, dtype=dtype)
    self.mid = nnx.List(
        [ResnetBlock(top, top, rngs=rngs, dtype=dtype) for _ in range(cfg.num_res_blocks)])
    levels = len(mult)
    self.up = nnx.List([
        UpBlock(hid * (mult[-1] if i == levels - 1 else mult[i + 1]), hid * mult[i],
                cfg.num_res_blocks, i != 0, rngs=rngs, dtype=dtype)
        for i in range(levels)])
    self.norm_out = group_norm(hid * mult[0], rngs=rngs, dtype=dtype)
    self.conv_out = conv(hid * mult[0], cfg.num_channels, 3, rngs=rngs, dtype=dtype)

  def __call__(self, z):
    x = self.conv_in(z)
    for block in self.mid:
      x = block(x)
    for block in reversed(self.up):
      x = block(x)
    return self.conv_out(jax.nn.silu(self.norm_out(x)))
