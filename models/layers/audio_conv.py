"""1D convolutions of the audio codecs, with PyTorch's weight layouts and weight norm.

Audio runs channels-last ([B, T, C]); kernels keep the official layout so that converters copy
them as they are: Conv1d [out, in / groups, k], ConvTranspose1d [in, out / groups, k]. With
`weight_norm` the kernel is `weight_g * weight_v / ||weight_v||`, the norm over every axis but
the first, as `torch.nn.utils.weight_norm(dim=0)` does; for a transposed conv the first axis is
the *input* channel, a quirk the released EnCodec, DAC and SNAC weights depend on.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes

_DIMENSIONS = ("NWC", "OIW", "NWC")


def _torch_uniform(key, shape, fan_in: int):
  bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default Conv1d init, for weights and biases.
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _norm_except_first(v):
  return jnp.sqrt(jnp.sum(v * v, axis=tuple(range(1, v.ndim)), keepdims=True))


class _WeightNormed(nnx.Module):
  """Holds `weight` or (`weight_g`, `weight_v`) of the official shape and builds the kernel."""

  def _init_weight(self, shape, fan_in: int, weight_norm: bool, rngs: nnx.Rngs, names):
    v = _torch_uniform(rngs.params(), shape, fan_in)
    self.weight_norm = weight_norm
    if weight_norm:
      self.weight_v = nnx.Param(v, **axes(*names))
      self.weight_g = nnx.Param(_norm_except_first(v), **axes(names[0], *[None] * (v.ndim - 1)))
    else:
      self.weight = nnx.Param(v, **axes(*names))

  def kernel(self):
    if not self.weight_norm:
      return self.weight[...]
    v = self.weight_v[...]
    return self.weight_g[...] * v / _norm_except_first(v)


class Conv1d(_WeightNormed):
  """torch.nn.Conv1d on [B, T, C]; `padding` is (left, right) zeros, or an int for both."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
               dilation: int = 1, groups: int = 1, padding=0, use_bias: bool = True,
               weight_norm: bool = True, rngs: nnx.Rngs):
    if in_channels % groups or out_channels % groups:
      raise ValueError(f"channels {in_channels}->{out_channels} do not split into {groups} groups")
    self.in_channels, self.out_channels = in_channels, out_channels
    self.kernel_size, self.stride, self.dilation, self.groups = kernel_size, stride, dilation, groups
    self.padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    fan_in = in_channels // groups * kernel_size
    self._init_weight((out_channels, in_channels // groups, kernel_size), fan_in, weight_norm,
                      rngs, ("conv_out", "conv_in", None))
    self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_channels,), fan_in),
                          **axes("conv_out")) if use_bias else None

  def __call__(self, x):
    if x.shape[-1] != self.in_channels:
      raise ValueError(f"expected {self.in_channels} channels on the last axis, got {x.shape}")
    kernel = self.kernel().astype(x.dtype)
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(self.stride,), padding=[self.padding],
        rhs_dilation=(self.dilation,), dimension_numbers=_DIMENSIONS,
        feature_group_count=self.groups)
    return y if self.bias is None else y + self.bias[...].astype(x.dtype)


class ConvTranspose1d(_WeightNormed):
  """torch.nn.ConvTranspose1d on [B, T, C]: length (T - 1) * stride - 2 * padding
  + dilation * (kernel_size - 1) + output_padding + 1."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
               dilation: int = 1, groups: int = 1, padding: int = 0, output_padding: int = 0,
               use_bias: bool = True, weight_norm: bool = True, rngs: nnx.Rngs):
    if in_channels % groups or out_channels % groups:
      raise ValueError(f"channels {in_channels}->{out_channels} do not split into {groups} groups")
    self.in_channels, self.out_channels = in_channels, out_channels
    self.kernel_size, self.stride, self.dilation, self.groups = kernel_size, stride, dilation, groups
    self.padding, self.output_padding = padding, output_padding
    # PyTorch computes the transposed conv's fan-in from weight.size(1) * k.
    fan_in = out_channels // groups * kernel_size
    self._init_weight((in_channels, out_channels // groups, kernel_size), fan_in, weight_norm,
                      rngs, ("conv_in", "conv_out", None))
    self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_channels,), fan_in),
                          **axes("conv_out")) if use_bias else None

  def __call__(self, x):
    if x.shape[-1] != self.in_channels:
      raise ValueError(f"expected {self.in_channels} channels on the last axis, got {x.shape}")
    g, k = self.groups, self.kernel_size
    w = self.kernel().astype(x.dtype)  # [in, out / g, k]
    # The equivalent forward conv: per group swap in/out and flip the taps -> [out, in / g, k].
    w = w.reshape(g, self.in_channels // g, self.out_channels // g, k).transpose(0, 2, 1, 3)
    w = w.reshape(self.out_channels, self.in_channels // g, k)[..., ::-1]
    edge = self.dilation * (k - 1) - self.padding
    y = jax.lax.conv_general_dilated(
        x, w, window_strides=(1,), padding=[(edge, edge + self.output_padding)],
        lhs_dilation=(self.stride,), rhs_dilation=(self.dilation,),
        dimension_numbers=_DIMENSIONS, feature_group_count=g)
    return y if self.bias is None else y + self.bias[...].astype(x.dtype)


class Conv2d(_WeightNormed):
  """torch.nn.Conv2d on NHWC; `padding` is ((top, bottom), (left, right)) or (ph, pw)."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1,
               dilation=1, padding=(0, 0), use_bias: bool = True, weight_norm: bool = True,
               rngs: nnx.Rngs):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    self.in_channels, self.out_channels = in_channels, out_channels
    self.kernel_size, self.stride, self.dilation = pair(kernel_size), pair(stride), pair(dilation)
    self.padding = tuple(pair(p) if not isinstance(p, int) else (p, p) for p in pair(padding))
    fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
    self._init_weight((out_channels, in_channels, *self.kernel_size), fan_in, weight_norm, rngs,
                      ("conv_out", "conv_in", None, None))
    self.bias = nnx.Param(_torch_uniform(rngs.params(), (out_channels,), fan_in),
                          **axes("conv_out")) if use_bias else None

  def __call__(self, x):
    if x.shape[-1] != self.in_channels:
      raise ValueError(f"expected {self.in_channels} channels on the last axis, got {x.shape}")
    y = jax.lax.conv_general_dilated(
        x, self.kernel().astype(x.dtype), window_strides=self.stride, padding=self.padding,
        rhs_dilation=self.dilation, dimension_numbers=("NHWC", "OIHW", "NHWC"))
    return y if self.bias is None else y + self.bias[...].astype(x.dtype)


def snake(x, alpha):
  """x + sin^2(alpha x) / alpha (DAC's 1e-9 guard against alpha = 0 included)."""
  return x + jnp.reciprocal(alpha + 1e-9) * jnp.sin(alpha * x) ** 2


class Snake(nnx.Module):
  """Snake activation with one learned `alpha` per channel, stored as PyTorch's [1, C, 1]."""

  def __init__(self, channels: int):
    self.alpha = nnx.Param(jnp.ones((1, channels, 1), jnp.float32), **axes(None, "conv_out", None))

  def __call__(self, x):
    return snake(x, self.alpha[...].reshape(-1).astype(x.dtype))
