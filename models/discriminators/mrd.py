"""DAC's multi-resolution, multi-band complex STFT discriminator (MRD).

The STFT (periodic Hann, hop window // 4) is aligned like a strided conv (audiotools'
match_stride: reflect padding to whole hops plus (window - hop) / 2 each side, the first and
last two frames dropped); its real and imaginary parts are two channels of a [time, freq]
image, cut into frequency bands that each go through their own conv stack before a shared
final conv over the bands put back together.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.audio_conv import Conv2d
from models.layers.spectral import stft

BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


def aligned_stft(x, window: int):
  """x [B, T, C] -> complex [B, C, ceil(T / hop), window // 2 + 1], hop = window // 4."""
  hop = window // 4
  length = x.shape[1]
  right = math.ceil(length / hop) * hop - length
  pad = (window - hop) // 2
  x = jnp.pad(jnp.swapaxes(x, 1, 2), ((0, 0), (0, 0), (pad, pad + right)), mode="reflect")
  return stft(x, n_fft=window, hop_length=hop)[:, :, 2:-2]


class ResolutionDiscriminator(nnx.Module):

  def __init__(self, window: int, bands=BANDS, *, width: int = 32, rngs: nnx.Rngs):
    self.window = window
    bins = window // 2 + 1
    self.bands = tuple((int(lo * bins), int(hi * bins)) for lo, hi in bands)

    def stack():
      return nnx.List([
          Conv2d(2, width, (3, 9), padding=(1, 4), rngs=rngs),
          Conv2d(width, width, (3, 9), stride=(1, 2), padding=(1, 4), rngs=rngs),
          Conv2d(width, width, (3, 9), stride=(1, 2), padding=(1, 4), rngs=rngs),
          Conv2d(width, width, (3, 9), stride=(1, 2), padding=(1, 4), rngs=rngs),
          Conv2d(width, width, (3, 3), padding=(1, 1), rngs=rngs)])

    self.band_convs = nnx.List([stack() for _ in self.bands])
    self.conv_post = Conv2d(width, 1, (3, 3), padding=(1, 1), rngs=rngs)

  def __call__(self, x):
    """x [B, T, 1] -> feature maps, the last being the logits [B, frames, bands', 1]."""
    if x.shape[-1] != 1:
      raise ValueError(f"the MRD judges mono audio; got shape {x.shape}")
    spec = aligned_stft(x, self.window)[:, 0]  # [B, frames, bins]
    image = jnp.stack([spec.real, spec.imag], axis=-1).astype(x.dtype)
    maps, outputs = [], []
    for (lo, hi), convs in zip(self.bands, self.band_convs):
      band = image[:, :, lo:hi]
      for conv in convs:
        band = jax.nn.leaky_relu(conv(band), 0.1)
        maps.append(band)
      outputs.append(band)
    maps.append(self.conv_post(jnp.concatenate(outputs, axis=2)))
    return maps
