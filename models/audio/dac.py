"""DAC, the Descript Audio Codec (descriptinc/descript-audio-codec): a Snake conv codec with a
residual quantizer of factorized, l2-normalized codes and quantizer dropout.

Mono audio [B, T, 1] is right-padded to a multiple of the hop (the product of the encoder
rates), encoded to a `latent_dim` latent at `sample_rate / hop` frames per second, quantized
by `n_codebooks` levels and decoded with transposed convs and a final tanh; the output is
cropped back to the input length. Module names follow the official ones (`encoder.block`,
`decoder.model`, `quantizer.quantizers`) so that checkpoints map one to one.
"""
import dataclasses
import math

import jax.numpy as jnp
from flax import nnx

from models.audio.inputs import check_audio
from models.layers.audio_conv import Conv1d, ConvTranspose1d, Snake
from models.quantizers.factorized_vq import FactorizedVQ
from models.quantizers.rvq import ResidualVQ, bits_per_second
from models.quantizers.vq import codebook_stats


@dataclasses.dataclass(frozen=True)
class DACConfig:
  """The official constructor's arguments (the `metadata.kwargs` of a released .pth)."""
  encoder_dim: int = 64
  encoder_rates: tuple[int, ...] = (2, 4, 8, 8)
  latent_dim: int | None = None  # None: encoder_dim * 2 ** len(encoder_rates)
  decoder_dim: int = 1536
  decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
  n_codebooks: int = 9
  codebook_size: int = 1024
  codebook_dim: int = 8
  quantizer_dropout: float = 0.0
  sample_rate: int = 44100
  channels: int = 1  # DAC is mono

  @property
  def latent(self) -> int:
    return self.latent_dim or self.encoder_dim * 2 ** len(self.encoder_rates)


def _residual_crop(x, y):
  """The official residual units crop the skip symmetrically when the branch is shorter."""
  pad = (x.shape[1] - y.shape[1]) // 2
  return x[:, pad:x.shape[1] - pad] if pad > 0 else x


class ResidualUnit(nnx.Module):

  def __init__(self, dim: int, dilation: int, *, rngs: nnx.Rngs):
    self.block = nnx.List([
        Snake(dim),
        Conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation, rngs=rngs),
        Snake(dim),
        Conv1d(dim, dim, 1, rngs=rngs),
    ])

  def __call__(self, x):
    y = x
    for layer in self.block:
      y = layer(y)
    return _residual_crop(x, y) + y


def _sequential(layers, x):
  for layer in layers:
    x = layer(x)
  return x


class EncoderBlock(nnx.Module):

  def __init__(self, dim: int, stride: int, *, rngs: nnx.Rngs):
    half = dim // 2
    self.block = nnx.List([
        ResidualUnit(half, 1, rngs=rngs), ResidualUnit(half, 3, rngs=rngs),
        ResidualUnit(half, 9, rngs=rngs), Snake(half),
        Conv1d(half, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2), rngs=rngs),
    ])

  def __call__(self, x):
    return _sequential(self.block, x)


class Encoder(nnx.Module):

  def __init__(self, cfg: DACConfig, *, rngs: nnx.Rngs):
    dim = cfg.encoder_dim
    layers = [Conv1d(cfg.channels, dim, 7, padding=3, rngs=rngs)]
    for stride in cfg.encoder_rates:
      dim *= 2
      layers.append(EncoderBlock(dim, stride, rngs=rngs))
    layers += [Snake(dim), Conv1d(dim, cfg.latent, 3, padding=1, rngs=rngs)]
    self.block = nnx.List(layers)

  def __call__(self, x):
    return _sequential(self.block, x)


class DecoderBlock(nnx.Module):

  def __init__(self, in_dim: int, out_dim: int, stride: int, *, rngs: nnx.Rngs):
    self.block = nnx.List([
        Snake(in_dim),
        ConvTranspose1d(in_dim, out_dim, 2 * stride, stride=stride,
                        padding=math.ceil(stride / 2), rngs=rngs),
        ResidualUnit(out_dim, 1, rngs=rngs), ResidualUnit(out_dim, 3, rngs=rngs),
        ResidualUnit(out_dim, 9, rngs=rngs),
    ])

  def __call__(self, x):
    return _sequential(self.block, x)


class Decoder(nnx.Module):

  def __init__(self, cfg: DACConfig, *, rngs: nnx.Rngs):
    layers = [Conv1d(cfg.latent, cfg.decoder_dim, 7, padding=3, rngs=rngs)]
    for i, stride in enumerate(cfg.decoder_rates):
      layers.append(DecoderBlock(cfg.decoder_dim // 2 ** i, cfg.decoder_dim // 2 ** (i + 1),
                                 stride, rngs=rngs))
    out_dim = cfg.decoder_dim // 2 ** len(cfg.decoder_rates)
    layers += [Snake(out_dim), Conv1d(out_dim, cfg.channels, 7, padding=3, rngs=rngs)]
    self.model = nnx.List(layers)

  def __call__(self, x):
    return jnp.tanh(_sequential(self.model, x))


class DAC(nnx.Module):

  def __init__(self, config: DACConfig, *, rngs: nnx.Rngs, dtype=None):
    if config.channels != 1:
      raise ValueError(f"DAC is a mono codec; got channels={config.channels}")
    self.config = config
    self.dtype = dtype
    self.encoder = Encoder(config, rngs=rngs)
    self.quantizer = ResidualVQ(
        [FactorizedVQ(config.latent, config.codebook_size, config.codebook_dim, rngs=rngs)
         for _ in range(config.n_codebooks)], dropout=config.quantizer_dropout)
    self.decoder = Decoder(config, rngs=rngs)

  @property
  def hop_length(self) -> int:
    return math.prod(self.config.encoder_rates)

  @property
  def frame_rate(self) -> float:
    return self.config.sample_rate / self.hop_length

  @property
  def num_levels(self) -> int:
    return self.config.n_codebooks

  @property
  def codebook_size(self) -> int:
    return self.config.codebook_size

  def bitrate(self, num_levels: int | None = None) -> float:
    levels = self.num_levels if num_levels is None else num_levels
    return bits_per_second([self.codebook_size] * levels, [self.frame_rate] * levels)

  def _prepare(self, audio, sample_rate):
    check_audio(audio, channels=self.config.channels, model_rate=self.config.sample_rate,
                sample_rate=sample_rate)
    length = audio.shape[1]
    pad = -length % self.hop_length  # DAC.preprocess: zeros on the right to whole frames
    audio = jnp.pad(jnp.asarray(audio, self.dtype or jnp.float32), ((0, 0), (0, pad), (0, 0)))
    return audio, length

  def encode(self, audio, num_levels: int | None = None, *, sample_rate: int | None = None):
    """audio [B, T, 1] in [-1, 1] -> int32 ids [B, ceil(T / hop), num_levels]."""
    audio, _ = self._prepare(audio, sample_rate)
    _, aux = self.quantizer(self.encoder(audio), num_levels=num_levels)
    return aux["ids"].astype(jnp.int32)

  def decode(self, ids):
    """ids [B, frames, L <= n_codebooks] -> audio [B, frames * hop, 1] float32."""
    ids = jnp.asarray(ids)
    if ids.ndim != 3:
      raise ValueError(f"ids must be [B, frames, levels]; got shape {ids.shape}")
    z = self.quantizer.lookup(ids)
    return self.decoder(z.astype(self.dtype or jnp.float32)).astype(jnp.float32)

  def __call__(self, audio, *, train: bool = False, num_levels: int | None = None,
               rngs: nnx.Rngs | None = None, sample_rate: int | None = None):
    audio, length = self._prepare(audio, sample_rate)
    z = self.encoder(audio)
    z_q, aux = self.quantizer(z, num_levels=num_levels, train=train, rngs=rngs)
    recon = self.decoder(z_q.astype(audio.dtype))[:, :length].astype(jnp.float32)
    ids = aux["ids"]
    return {
        "recon": recon,
        "ids": ids,
        "commitment_loss": aux["commitment_loss"],
        "codebook_loss": aux["codebook_loss"],
        "stats": {"levels_kept": jnp.mean(aux["levels_kept"].astype(jnp.float32)),
                  **codebook_stats(ids[..., 0], self.codebook_size)},
    }
