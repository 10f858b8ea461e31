"""SNAC, the Multi-Scale Neural Audio Codec (hubertsiuzdak/snac): a DAC-style Snake conv codec
whose residual levels run at different token rates.

Mono audio [B, T, 1] is right-padded to a multiple of hop * lcm(vq strides, attention window)
(the official `preprocess`), encoded by depthwise Snake conv blocks and local windowed
self-attention to a latent at `sample_rate / hop` frames per second, and quantized by
factorized, l2-normalized levels; level l average-pools the residual by `vq_strides[l]`
first, so the coarse levels carry fewer tokens per second. The decoder (attention, transposed
convs, noise blocks, final tanh) is cropped back to the input length by `__call__`.

Token ids are a tuple with one int32 array [B, frames / vq_strides[l]] per level, coarse
first (the official `codes` list); `decode` takes the first 1..L of them.

The decoder's NoiseBlocks add Gaussian noise, drawn afresh on every official call. Here the
noise comes from an explicit key: `decode(ids, noise_key=None)` adds none (deterministic);
a key draws it as the official does; `__call__(train=True)` draws it from `rngs.sample()`.
Module names follow the official ones (`encoder.block`, `decoder.model`,
`quantizer.quantizers` -> `quantizer.levels`) so that checkpoints map one to one.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.audio.inputs import check_audio
from models.layers.attention import dot_product_attention
from models.layers.audio_conv import Conv1d, ConvTranspose1d, Snake
from models.layers.axes import axes
from models.quantizers.factorized_vq import FactorizedVQ
from models.quantizers.rvq import ResidualVQ, bits_per_second
from models.quantizers.vq import codebook_stats


@dataclasses.dataclass(frozen=True)
class SNACConfig:
  """The official constructor's arguments (a release's config.json; `sampling_rate` there),
  with its defaults: a key a config.json leaves out means the default."""
  sample_rate: int = 44100
  encoder_dim: int = 64
  encoder_rates: tuple[int, ...] = (3, 3, 7, 7)
  latent_dim: int | None = None  # must be encoder_dim * 2 ** len(encoder_rates) (or None)
  decoder_dim: int = 1536
  decoder_rates: tuple[int, ...] = (7, 7, 3, 3)
  attn_window_size: int | None = 32  # None: no local attention
  codebook_size: int = 4096
  codebook_dim: int = 8
  vq_strides: tuple[int, ...] = (8, 4, 2, 1)
  noise: bool = True
  depthwise: bool = True
  attn_head_dim: int = 64  # fixed in the official LocalMHA; smaller only for tiny models
  quantizer_dropout: float = 0.0  # our training option (no official training code)
  channels: int = 1  # SNAC is mono

  @property
  def latent(self) -> int:
    return self.encoder_dim * 2 ** len(self.encoder_rates)


def _sequential(layers, x):
  for layer in layers:
    x = layer(x)
  return x


class ResidualUnit(nnx.Module):
  """Snake, dilated k7 conv (depthwise when groups = dim), Snake, 1x1 conv, plus the skip."""

  def __init__(self, dim: int, dilation: int, groups: int, *, rngs: nnx.Rngs):
    self.block = nnx.List([
        Snake(dim),
        Conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation, groups=groups, rngs=rngs),
        Snake(dim),
        Conv1d(dim, dim, 1, rngs=rngs),
    ])

  def __call__(self, x):
    y = _sequential(self.block, x)
    pad = (x.shape[1] - y.shape[1]) // 2  # the official crop; 0 with this padding
    return (x[:, pad:x.shape[1] - pad] if pad > 0 else x) + y


class EncoderBlock(nnx.Module):

  def __init__(self, dim: int, stride: int, groups: int, *, rngs: nnx.Rngs):
    half = dim // 2
    self.block = nnx.List([
        ResidualUnit(half, 1, groups, rngs=rngs), ResidualUnit(half, 3, groups, rngs=rngs),
        ResidualUnit(half, 9, groups, rngs=rngs), Snake(half),
        Conv1d(half, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2), rngs=rngs),
    ])

  def __call__(self, x):
    return _sequential(self.block, x)


def rotary_inv_freq(head_dim: int) -> np.ndarray:
  """The official SinusoidalEmbeddings buffer `inv_freq` (float32, as torch computes it)."""
  exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
  return (1.0 / (np.float32(10000.0) ** exponents)).astype(np.float32)


def _rotate_half(x):
  first, second = jnp.split(x, 2, axis=-1)
  return jnp.concatenate([-second, first], axis=-1)


class LocalMHA(nnx.Module):
  """Pre-LN self-attention within non-overlapping windows of `window` frames, plus the skip.

  Rotary embeddings restart at position 0 in every window (no xpos scaling: the official
  `use_xpos` is off); q|k|v come from one bias-free projection, heads of `head_dim`.
  """

  def __init__(self, dim: int, window: int, *, head_dim: int = 64, rngs: nnx.Rngs, dtype=None):
    if dim % head_dim or head_dim % 2:
      raise ValueError(f"attention width {dim} must be a multiple of the (even) head size "
                       f"{head_dim}")
    self.dim, self.window, self.head_dim = dim, window, head_dim
    self.norm = nnx.LayerNorm(dim, epsilon=1e-5, dtype=dtype, use_fast_variance=False,
                              rngs=rngs, scale_metadata=axes("norm"), bias_metadata=axes("norm"))
    self.to_qkv = nnx.Linear(dim, 3 * dim, use_bias=False, dtype=dtype, rngs=rngs,
                             kernel_metadata=axes("embed", "qkv"))
    self.to_out = nnx.Linear(dim, dim, use_bias=False, dtype=dtype, rngs=rngs,
                             kernel_metadata=axes("heads", "embed"))

  def _rotary(self, t):
    positions = np.arange(self.window, dtype=np.float32)
    freqs = positions[:, None] * rotary_inv_freq(self.head_dim)[None, :]
    freqs = np.concatenate([freqs, freqs], axis=-1)[:, None, :]  # [window, 1 head, head_dim]
    cos, sin = jnp.asarray(np.cos(freqs), t.dtype), jnp.asarray(np.sin(freqs), t.dtype)
    return t * cos + _rotate_half(t) * sin

  def __call__(self, x):
    b, t, c = x.shape
    if t % self.window:
      raise ValueError(f"{t} frames do not split into attention windows of {self.window}; "
                       "pad the audio as SNAC.encode does")
    heads, windows = c // self.head_dim, t // self.window
    q, k, v = jnp.split(self.to_qkv(self.norm(x)), 3, axis=-1)
    # [B, T, C] -> [B * windows, window, heads, head_dim]: every window attends to itself.
    q, k, v = (u.reshape(b * windows, self.window, heads, self.head_dim) for u in (q, k, v))
    out = dot_product_attention(self._rotary(q), self._rotary(k), v)
    return self.to_out(out.reshape(b, t, c)) + x


class Encoder(nnx.Module):

  def __init__(self, cfg: SNACConfig, *, rngs: nnx.Rngs, dtype=None):
    dim = cfg.encoder_dim
    layers = [Conv1d(cfg.channels, dim, 7, padding=3, rngs=rngs)]
    for stride in cfg.encoder_rates:
      dim *= 2
      layers.append(EncoderBlock(dim, stride, dim // 2 if cfg.depthwise else 1, rngs=rngs))
    if cfg.attn_window_size is not None:
      layers.append(LocalMHA(dim, cfg.attn_window_size, head_dim=cfg.attn_head_dim, rngs=rngs,
                             dtype=dtype))
    layers.append(Conv1d(dim, dim, 7, padding=3, groups=dim if cfg.depthwise else 1, rngs=rngs))
    self.block = nnx.List(layers)

  def __call__(self, x):
    return _sequential(self.block, x)


class NoiseBlock(nnx.Module):
  """x + noise * linear(x), with one noise value per example and frame: noise [B, T, 1]."""

  def __init__(self, dim: int, *, rngs: nnx.Rngs):
    self.linear = Conv1d(dim, dim, 1, use_bias=False, rngs=rngs)

  def __call__(self, x, noise):
    if noise is None:
      return x
    if noise.shape != (x.shape[0], x.shape[1], 1):
      raise ValueError(f"decoder noise must be [B, T, 1] = {(x.shape[0], x.shape[1], 1)}; "
                       f"got {noise.shape}")
    return x + noise.astype(x.dtype) * self.linear(x)


class DecoderBlock(nnx.Module):

  def __init__(self, in_dim: int, out_dim: int, stride: int, noise: bool, groups: int, *,
               rngs: nnx.Rngs):
    layers = [Snake(in_dim),
              ConvTranspose1d(in_dim, out_dim, 2 * stride, stride=stride,
                              padding=math.ceil(stride / 2), output_padding=stride % 2,
                              rngs=rngs)]
    if noise:
      layers.append(NoiseBlock(out_dim, rngs=rngs))
    layers += [ResidualUnit(out_dim, d, groups, rngs=rngs) for d in (1, 3, 9)]
    self.block = nnx.List(layers)

  def __call__(self, x, noise=None):
    for layer in self.block:
      x = layer(x, noise) if isinstance(layer, NoiseBlock) else layer(x)
    return x


class Decoder(nnx.Module):

  def __init__(self, cfg: SNACConfig, *, rngs: nnx.Rngs, dtype=None):
    latent, dim = cfg.latent, cfg.decoder_dim
    if cfg.depthwise:
      layers = [Conv1d(latent, latent, 7, padding=3, groups=latent, rngs=rngs),
                Conv1d(latent, dim, 1, rngs=rngs)]
    else:
      layers = [Conv1d(latent, dim, 7, padding=3, rngs=rngs)]
    if cfg.attn_window_size is not None:
      layers.append(LocalMHA(dim, cfg.attn_window_size, head_dim=cfg.attn_head_dim, rngs=rngs,
                             dtype=dtype))
    for i, stride in enumerate(cfg.decoder_rates):
      out_dim = dim // 2 ** (i + 1)
      layers.append(DecoderBlock(dim // 2 ** i, out_dim, stride, cfg.noise,
                                 out_dim if cfg.depthwise else 1, rngs=rngs))
    out_dim = dim // 2 ** len(cfg.decoder_rates)
    layers += [Snake(out_dim), Conv1d(out_dim, cfg.channels, 7, padding=3, rngs=rngs)]
    self.model = nnx.List(layers)  # the official Sequential ends with a (parameter-free) tanh

  def noise_shapes(self, batch: int, frames: int) -> list[tuple[int, int, int]]:
    """[B, T_i, 1] of the noise each NoiseBlock takes, in order, for `frames` latent frames."""
    shapes, length = [], frames
    for layer in self.model:
      if isinstance(layer, DecoderBlock):
        length *= layer.block[1].stride
        if _has_noise(layer):
          shapes.append((batch, length, 1))
    return shapes

  def draw_noise(self, key, batch: int, frames: int):
    """Standard normal noise for every NoiseBlock, one subkey each (None: no noise)."""
    shapes = self.noise_shapes(batch, frames)
    if key is None or not shapes:
      return [None] * len(shapes)
    keys = jax.random.split(key, len(shapes))
    return [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes)]

  def __call__(self, z, noise=None):
    """z [B, frames, latent] -> audio [B, frames * hop, 1]. `noise`: None (no noise), a PRNG
    key, or a list with one array per NoiseBlock (shapes from `noise_shapes`)."""
    if not isinstance(noise, (list, tuple)):
      noise = self.draw_noise(noise, z.shape[0], z.shape[1])
    wanted = self.noise_shapes(z.shape[0], z.shape[1])
    if len(noise) != len(wanted):
      raise ValueError(f"the decoder has {len(wanted)} noise blocks; got {len(noise)} noises")
    noise = iter(noise)
    x = z
    for layer in self.model:
      x = layer(x, next(noise)) if _has_noise(layer) else layer(x)
    return jnp.tanh(x)


def _has_noise(layer) -> bool:
  return isinstance(layer, DecoderBlock) and any(isinstance(s, NoiseBlock) for s in layer.block)


def _per_level(ids) -> tuple:
  """ResidualVQ stacks the ids of equal-stride levels to [B, T, L]; SNAC keeps one per level."""
  if isinstance(ids, (tuple, list)):
    return tuple(ids)
  return tuple(ids[..., i] for i in range(ids.shape[-1]))


class SNAC(nnx.Module):

  def __init__(self, config: SNACConfig, *, rngs: nnx.Rngs, dtype=None):
    if config.channels != 1:
      raise ValueError(f"SNAC is a mono codec; got channels={config.channels}")
    if config.latent_dim is not None and config.latent_dim != config.latent:
      raise ValueError(f"latent_dim {config.latent_dim} must equal encoder_dim * 2 ** "
                       f"len(encoder_rates) = {config.latent}: the encoder's output width")
    if math.prod(config.encoder_rates) != math.prod(config.decoder_rates):
      raise ValueError(f"encoder_rates {config.encoder_rates} and decoder_rates "
                       f"{config.decoder_rates} must have the same product (the hop)")
    self.config = config
    self.dtype = dtype
    self.encoder = Encoder(config, rngs=rngs, dtype=dtype)
    self.quantizer = ResidualVQ(
        [FactorizedVQ(config.latent, config.codebook_size, config.codebook_dim, stride=s,
                      rngs=rngs) for s in config.vq_strides], dropout=config.quantizer_dropout)
    self.decoder = Decoder(config, rngs=rngs, dtype=dtype)

  @property
  def hop_length(self) -> int:
    return math.prod(self.config.encoder_rates)

  @property
  def frame_rate(self) -> float:
    """Latent frames per second: the token rate of a stride-1 level."""
    return self.config.sample_rate / self.hop_length

  @property
  def num_levels(self) -> int:
    return len(self.config.vq_strides)

  @property
  def codebook_size(self) -> int:
    return self.config.codebook_size

  @property
  def pad_multiple(self) -> int:
    """Inputs are right-padded to a multiple of this many samples (official `preprocess`)."""
    return self.hop_length * math.lcm(*self.config.vq_strides, self.config.attn_window_size or 1)

  def level_rates(self, num_levels: int | None = None) -> list[float]:
    """Tokens per second of each of the first `num_levels` levels, coarse first."""
    levels = self.num_levels if num_levels is None else int(num_levels)
    if not 1 <= levels <= self.num_levels:
      raise ValueError(f"num_levels must be in 1..{self.num_levels}, got {num_levels}")
    return [self.frame_rate / s for s in self.config.vq_strides[:levels]]

  def bitrate(self, num_levels: int | None = None) -> float:
    rates = self.level_rates(num_levels)
    return bits_per_second([self.codebook_size] * len(rates), rates)

  def _prepare(self, audio, sample_rate, num_levels=None):
    if num_levels is not None and not 1 <= int(num_levels) <= self.num_levels:
      raise ValueError(f"num_levels must be in 1..{self.num_levels}, got {num_levels}")
    check_audio(audio, channels=self.config.channels, model_rate=self.config.sample_rate,
                sample_rate=sample_rate)
    length = audio.shape[1]
    pad = -length % self.pad_multiple
    audio = jnp.pad(jnp.asarray(audio, self.dtype or jnp.float32), ((0, 0), (0, pad), (0, 0)))
    return audio, length

  def encode(self, audio, num_levels: int | None = None, *, sample_rate: int | None = None):
    """audio [B, T, 1] in [-1, 1] -> a tuple of int32 ids [B, frames / vq_strides[l]], one per
    level, coarse first; frames = T padded to `pad_multiple`, divided by the hop."""
    audio, _ = self._prepare(audio, sample_rate, num_levels)
    _, aux = self.quantizer(self.encoder(audio), num_levels=num_levels)
    return tuple(ids.astype(jnp.int32) for ids in _per_level(aux["ids"]))

  def _check_ids(self, ids):
    if not isinstance(ids, (tuple, list)) or not ids:
      raise ValueError("SNAC ids must be a tuple of per-level arrays [B, frames_l], coarse "
                       f"first (as encode returns); got {type(ids).__name__}")
    if len(ids) > self.num_levels:
      raise ValueError(f"got {len(ids)} levels of ids; the model has {self.num_levels}")
    ids = [jnp.asarray(i) for i in ids]
    frames = set()
    for level, (level_ids, stride) in enumerate(zip(ids, self.config.vq_strides)):
      if level_ids.ndim != 2:
        raise ValueError(f"ids of level {level} must be [B, frames_l]; got {level_ids.shape}")
      if not jnp.issubdtype(level_ids.dtype, jnp.integer):
        raise TypeError(f"token ids must be integers; level {level} is {level_ids.dtype}")
      frames.add((level_ids.shape[0], level_ids.shape[1] * stride))
    if len(frames) != 1:
      raise ValueError("the levels' ids disagree on batch or length: (batch, frames_l * stride) "
                       f"= {sorted(frames)} with vq_strides {self.config.vq_strides}")
    if not isinstance(ids[0], jax.core.Tracer):
      for level, level_ids in enumerate(ids):
        if level_ids.size and (int(level_ids.min()) < 0
                               or int(level_ids.max()) >= self.codebook_size):
          raise ValueError(f"ids of level {level} must be in [0, {self.codebook_size}); got "
                           f"[{int(level_ids.min())}, {int(level_ids.max())}]")
    return tuple(ids)

  def decode(self, ids, *, noise_key=None):
    """ids (a tuple of the first 1..L levels' [B, frames_l]) -> audio [B, frames * hop, 1]
    float32. `noise_key`: None adds no decoder noise; a key draws it like the official."""
    z = self.quantizer.lookup(self._check_ids(ids))
    audio = self.decoder(z.astype(self.dtype or jnp.float32), noise_key)
    return audio.astype(jnp.float32)

  def __call__(self, audio, *, train: bool = False, num_levels: int | None = None,
               rngs: nnx.Rngs | None = None, sample_rate: int | None = None, noise_key=None):
    """Encode, quantize, decode. In training the decoder noise comes from `rngs.sample()`
    (as the official model always draws it); otherwise from `noise_key` (None: no noise)."""
    needs_rngs = self.config.quantizer_dropout > 0 or (self.config.noise and noise_key is None)
    if train and needs_rngs and rngs is None:
      raise ValueError("training SNAC needs rngs with a 'sample' stream (quantizer dropout, "
                       "decoder noise)")
    audio, length = self._prepare(audio, sample_rate, num_levels)
    z = self.encoder(audio)
    z_q, aux = self.quantizer(z, num_levels=num_levels, train=train, rngs=rngs)
    if train and self.config.noise and noise_key is None:
      noise_key = rngs.sample()
    recon = self.decoder(z_q.astype(audio.dtype), noise_key)[:, :length].astype(jnp.float32)
    ids = tuple(i.astype(jnp.int32) for i in _per_level(aux["ids"]))
    return {
        "recon": recon,
        "ids": ids,
        "commitment_loss": aux["commitment_loss"],
        "codebook_loss": aux["codebook_loss"],
        "stats": {"levels_kept": jnp.mean(aux["levels_kept"].astype(jnp.float32)),
                  **codebook_stats(ids[-1], self.codebook_size)},
    }
