"""EnCodec's multi-scale STFT discriminator (encodec/msstftd.py): per scale, the complex STFT
(periodic Hann, no centring, divided by the window's l2 norm as torchaudio's normalized=True
does) as real/imaginary channels of a [time, freq] image, through 2D convs dilated in time and
strided in frequency, LeakyReLU(0.2) after each. The first conv has no weight norm, as in the
original (it is built without a `norm` argument)."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.audio_conv import Conv2d
from models.layers.spectral import hann_window, stft


class STFTDiscriminator(nnx.Module):

  def __init__(self, n_fft: int, hop_length: int, win_length: int, channels: int = 1, *,
               filters: int = 32, dilations=(1, 2, 4), rngs: nnx.Rngs):
    self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
    layers = [Conv2d(2 * channels, filters, (3, 9), padding=(1, 4), weight_norm=False,
                     rngs=rngs)]
    layers += [Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1),
                      padding=(d, 4), rngs=rngs) for d in dilations]
    layers.append(Conv2d(filters, filters, (3, 3), padding=(1, 1), rngs=rngs))
    self.convs = nnx.List(layers)
    self.conv_post = Conv2d(filters, 1, (3, 3), padding=(1, 1), rngs=rngs)

  def __call__(self, x):
    """x [B, T, C] -> feature maps, the last being the logits [B, frames, bins', 1]."""
    window = hann_window(self.win_length)
    spec = stft(jnp.swapaxes(x, 1, 2), n_fft=self.n_fft, hop_length=self.hop_length,
                win_length=self.win_length, window=window, center=False)
    spec = spec / np.sqrt(np.sum(window ** 2))  # [B, C, frames, bins]
    # The original stacks all real parts, then all imaginary parts, as channels.
    z = jnp.concatenate([spec.real, spec.imag], axis=1).transpose(0, 2, 3, 1).astype(x.dtype)
    maps = []
    for conv in self.convs:
      z = jax.nn.leaky_relu(conv(z), 0.2)
      maps.append(z)
    maps.append(self.conv_post(z))
    return maps
