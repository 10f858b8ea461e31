"""The codec discriminators in one module: DAC's multi-period (MPD) and multi-resolution
(MRD) discriminators by default, as `dac.model.discriminator.Discriminator(rates=[])`, and
EnCodec's multi-scale STFT discriminator (`msstft_n_ffts`, as encodec/msstftd.py).

The output is DAC's format: one list per sub-discriminator of its feature maps, the last
being the logits. MPD and MRD see the audio zero-meaned and peak-normalised to 0.8, as DAC
does; the MS-STFT discriminator sees it as it is, as EnCodec's. `width_scale` narrows every
conv (1 is the official width; the tiny recipes use less).
"""
import dataclasses

import jax.numpy as jnp
from flax import nnx

from models.discriminators.mpd import PeriodDiscriminator
from models.discriminators.mrd import BANDS, ResolutionDiscriminator
from models.discriminators.msstft import STFTDiscriminator


@dataclasses.dataclass(frozen=True)
class AudioDiscriminatorConfig:
  sample_rate: int = 44100
  channels: int = 1
  periods: tuple[int, ...] = (2, 3, 5, 7, 11)
  fft_sizes: tuple[int, ...] = (2048, 1024, 512)
  bands: tuple[tuple[float, float], ...] = BANDS
  msstft_n_ffts: tuple[int, ...] = ()  # EnCodec: (1024, 2048, 512); audiocraft adds 256, 128
  msstft_hop_lengths: tuple[int, ...] = ()  # default n_fft // 4
  msstft_filters: int = 32
  width_scale: float = 1.0


class AudioDiscriminator(nnx.Module):

  def __init__(self, config: AudioDiscriminatorConfig, *, rngs: nnx.Rngs):
    if not config.periods and not config.fft_sizes and not config.msstft_n_ffts:
      raise ValueError("an audio discriminator needs periods, fft_sizes or msstft_n_ffts")
    hops = config.msstft_hop_lengths or tuple(n // 4 for n in config.msstft_n_ffts)
    self.config = config
    mrd_width = max(1, int(round(32 * config.width_scale)))
    self.discriminators = nnx.List(
        [PeriodDiscriminator(p, config.channels, width_scale=config.width_scale, rngs=rngs)
         for p in config.periods]
        + [ResolutionDiscriminator(w, config.bands, width=mrd_width, rngs=rngs)
           for w in config.fft_sizes]
        + [STFTDiscriminator(n, hop, n, config.channels, rngs=rngs,
                             filters=max(1, int(round(config.msstft_filters * config.width_scale))))
           for n, hop in zip(config.msstft_n_ffts, hops, strict=True)])

  def __call__(self, audio):
    if audio.ndim != 3 or audio.shape[-1] != self.config.channels:
      raise ValueError(f"the discriminator takes [B, T, {self.config.channels}] audio; got "
                       f"shape {audio.shape}")
    x = audio - jnp.mean(audio, axis=1, keepdims=True)
    x = 0.8 * x / (jnp.max(jnp.abs(x), axis=1, keepdims=True) + 1e-9)
    return [d(audio if isinstance(d, STFTDiscriminator) else x) for d in self.discriminators]
