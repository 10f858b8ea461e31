"""SEANet, EnCodec's convolutional encoder and decoder (encodec/modules/seanet.py, conv.py).

Convs pad themselves the way the original's SConv1d / SConvTranspose1d do:
  * conv: total padding (k - 1) * dilation - (stride - 1), all on the left when causal, else
    split with the extra sample on the left; plus "extra" right padding so the last window is
    whole; reflect padding (with the original's zero-extension when the input is shorter than
    the padding);
  * transposed conv: k - stride samples trimmed, all on the right when causal, else split.
Norms: "weight_norm" (legacy g/v) or "time_group_norm" (a GroupNorm with one group after a
plain conv). Layers sit in `model` lists indexed as the official nn.Sequential, activations
included, so that checkpoint names map one to one.

Streaming (causal models): every layer has `stream(state, x) -> (state, y)` with an explicit
state, starting from `None`. A causal conv keeps the last inputs its left padding covers; a
transposed conv carries the overlap of its last frames into the next chunk; the LSTM its (h, c).
The stream's first chunk is padded by reflection, like the start of a one-shot pass, so it
must be longer than every conv's padding (at least 8 frames for the released models).
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.audio_conv import Conv1d, ConvTranspose1d
from models.layers.lstm import LSTM


@dataclasses.dataclass(frozen=True)
class SEANetConfig:
  channels: int = 1
  dimension: int = 128
  n_filters: int = 32
  n_residual_layers: int = 1
  ratios: tuple[int, ...] = (8, 5, 4, 2)  # decoder order; the encoder runs them reversed
  norm: str = "weight_norm"  # or "time_group_norm"
  kernel_size: int = 7
  last_kernel_size: int = 7
  residual_kernel_size: int = 3
  dilation_base: int = 2
  causal: bool = False
  pad_mode: str = "reflect"
  true_skip: bool = False
  compress: int = 2
  lstm: int = 2


def pad1d(x, left: int, right: int, mode: str):
  """[B, T, C] padding along T; reflect on a too-short input zero-extends it first."""
  if mode != "reflect":
    return jnp.pad(x, ((0, 0), (left, right), (0, 0)))
  extra = max(left, right) - x.shape[1] + 1 if x.shape[1] <= max(left, right) else 0
  x = jnp.pad(x, ((0, 0), (0, extra), (0, 0)))
  x = jnp.pad(x, ((0, 0), (left, right), (0, 0)), mode="reflect")
  return x[:, :x.shape[1] - extra]


class ELU(nnx.Module):
  """A parameter-free list entry, so that layer indices match the official Sequential."""

  def __call__(self, x):
    return jax.nn.elu(x)

  def stream(self, state, x):
    return state, self(x)


class NormConv(nnx.Module):
  """The official NormConv1d / NormConvTranspose1d: a conv then an optional GroupNorm."""

  def __init__(self, conv, out_channels: int, norm: str, *, rngs: nnx.Rngs):
    self.conv = conv
    self.norm = (nnx.GroupNorm(out_channels, num_groups=1, epsilon=1e-5, rngs=rngs)
                 if norm == "time_group_norm" else None)

  def __call__(self, x):
    y = self.conv(x)
    return y if self.norm is None else self.norm(y)


def _check_norm(norm: str):
  if norm not in ("weight_norm", "time_group_norm"):
    raise ValueError(f"norm must be 'weight_norm' or 'time_group_norm', got {norm!r}")


class SConv1d(nnx.Module):

  def __init__(self, cin: int, cout: int, kernel_size: int, *, stride: int = 1, dilation: int = 1,
               causal: bool, norm: str, pad_mode: str, rngs: nnx.Rngs):
    _check_norm(norm)
    if causal and norm == "time_group_norm":
      raise ValueError("GroupNorm over time cannot run causally")
    self.conv = NormConv(Conv1d(cin, cout, kernel_size, stride=stride, dilation=dilation,
                                weight_norm=norm == "weight_norm", rngs=rngs), cout, norm,
                         rngs=rngs)
    self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
    self.causal, self.pad_mode = causal, pad_mode
    self.padding_total = (kernel_size - 1) * dilation - (stride - 1)

  def _extra(self, length: int) -> int:
    k = (self.kernel_size - 1) * self.dilation + 1
    frames = (length - k + self.padding_total) / self.stride + 1
    return (math.ceil(frames) - 1) * self.stride + (k - self.padding_total) - length

  def __call__(self, x):
    extra = self._extra(x.shape[1])
    if self.causal:
      left, right = self.padding_total, extra
    else:
      right = self.padding_total // 2
      left, right = self.padding_total - right, right + extra
    return self.conv(pad1d(x, left, right, self.pad_mode))

  def stream(self, history, x):
    """history: the last `padding_total` inputs seen, or None at the stream's start."""
    if x.shape[1] % self.stride:
      raise ValueError(f"a chunk of {x.shape[1]} steps is not a whole number of strides "
                       f"({self.stride}); stream whole frames")
    p = self.padding_total
    padded = pad1d(x, p, 0, self.pad_mode) if history is None else jnp.concatenate(
        [history, x], axis=1)
    return padded[:, padded.shape[1] - p:], self.conv(padded)


class SConvTranspose1d(nnx.Module):

  def __init__(self, cin: int, cout: int, kernel_size: int, *, stride: int, causal: bool,
               norm: str, rngs: nnx.Rngs):
    _check_norm(norm)
    self.convtr = NormConv(ConvTranspose1d(cin, cout, kernel_size, stride=stride,
                                           weight_norm=norm == "weight_norm", rngs=rngs),
                           cout, norm, rngs=rngs)
    self.causal, self.stride = causal, stride
    self.padding_total = kernel_size - stride

  def __call__(self, x):
    y = self.convtr(x)
    p = self.padding_total
    right = p if self.causal else p // 2  # trim_right_ratio 1 when causal
    return y[:, p - right:y.shape[1] - right]

  def stream(self, tail, x):
    """tail: the bias-free overlap [B, k - stride, C] the previous chunk left, or None."""
    conv = self.convtr.conv
    y = self.convtr(x)
    if tail is not None:
      y = y.at[:, :tail.shape[1]].add(tail)
    cut = y.shape[1] - self.padding_total
    bias = 0.0 if conv.bias is None else conv.bias[...].astype(y.dtype)
    return y[:, cut:] - bias, y[:, :cut]


class ResnetBlock(nnx.Module):

  def __init__(self, dim: int, cfg: SEANetConfig, dilation: int, *, rngs: nnx.Rngs):
    hidden = dim // cfg.compress
    conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode, rngs=rngs)
    self.block = nnx.List([
        ELU(), SConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation, **conv),
        ELU(), SConv1d(hidden, dim, 1, **conv)])
    self.shortcut = None if cfg.true_skip else SConv1d(dim, dim, 1, **conv)

  def __call__(self, x):
    y = x
    for layer in self.block:
      y = layer(y)
    return (x if self.shortcut is None else self.shortcut(x)) + y

  def stream(self, state, x):
    state = state or [None] * (len(self.block) + 1)
    y, new = x, []
    for layer, s in zip(self.block, state):
      s, y = layer.stream(s, y)
      new.append(s)
    short_state, short = (state[-1], x) if self.shortcut is None else self.shortcut.stream(
        state[-1], x)
    return new + [short_state], short + y


class SLSTM(nnx.Module):
  """The bottleneck LSTM with its skip connection (encodec/modules/lstm.py)."""

  def __init__(self, dim: int, num_layers: int, *, rngs: nnx.Rngs):
    self.lstm = LSTM(dim, num_layers, rngs=rngs)

  def __call__(self, x):
    return self.lstm(x)[0] + x

  def stream(self, state, x):
    y, state = self.lstm(x, state)
    return state, y + x


def _run(layers, x):
  for layer in layers:
    x = layer(x)
  return x


def _stream(layers, state, x):
  state = state or [None] * len(layers)
  new = []
  for layer, s in zip(layers, state):
    s, x = layer.stream(s, x)
    new.append(s)
  return new, x


class SEANetEncoder(nnx.Module):

  def __init__(self, cfg: SEANetConfig, *, rngs: nnx.Rngs):
    conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode, rngs=rngs)
    mult = 1
    layers = [SConv1d(cfg.channels, cfg.n_filters, cfg.kernel_size, **conv)]
    for ratio in reversed(cfg.ratios):
      dim = mult * cfg.n_filters
      layers += [ResnetBlock(dim, cfg, cfg.dilation_base ** j, rngs=rngs)
                 for j in range(cfg.n_residual_layers)]
      layers += [ELU(), SConv1d(dim, dim * 2, ratio * 2, stride=ratio, **conv)]
      mult *= 2
    if cfg.lstm:
      layers.append(SLSTM(mult * cfg.n_filters, cfg.lstm, rngs=rngs))
    layers += [ELU(), SConv1d(mult * cfg.n_filters, cfg.dimension, cfg.last_kernel_size, **conv)]
    self.model = nnx.List(layers)

  def __call__(self, x):
    return _run(self.model, x)

  def stream(self, state, x):
    return _stream(self.model, state, x)


class SEANetDecoder(nnx.Module):

  def __init__(self, cfg: SEANetConfig, *, rngs: nnx.Rngs):
    conv = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode, rngs=rngs)
    mult = 2 ** len(cfg.ratios)
    layers = [SConv1d(cfg.dimension, mult * cfg.n_filters, cfg.kernel_size, **conv)]
    if cfg.lstm:
      layers.append(SLSTM(mult * cfg.n_filters, cfg.lstm, rngs=rngs))
    for ratio in cfg.ratios:
      dim = mult * cfg.n_filters
      layers += [ELU(), SConvTranspose1d(dim, dim // 2, ratio * 2, stride=ratio,
                                         causal=cfg.causal, norm=cfg.norm, rngs=rngs)]
      layers += [ResnetBlock(dim // 2, cfg, cfg.dilation_base ** j, rngs=rngs)
                 for j in range(cfg.n_residual_layers)]
      mult //= 2
    layers += [ELU(), SConv1d(cfg.n_filters, cfg.channels, cfg.last_kernel_size, **conv)]
    self.model = nnx.List(layers)

  def __call__(self, x):
    return _run(self.model, x)

  def stream(self, state, x):
    return _stream(self.model, state, x)
