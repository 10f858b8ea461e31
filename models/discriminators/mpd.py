"""Multi-period discriminator (HiFi-GAN), as DAC builds it: the waveform folded into
[time / period, period] and judged by 2D convs whose kernels run along time only."""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.audio_conv import Conv2d

WIDTHS = (32, 128, 512, 1024, 1024)


def _width(c: int, scale: float) -> int:
  return max(1, int(round(c * scale)))


class PeriodDiscriminator(nnx.Module):

  def __init__(self, period: int, channels: int = 1, *, width_scale: float = 1.0,
               rngs: nnx.Rngs):
    self.period = period
    widths = [_width(c, width_scale) for c in WIDTHS]
    ins = [channels] + widths[:-1]
    self.convs = nnx.List([
        Conv2d(cin, cout, (5, 1), stride=(3, 1) if i < 4 else 1, padding=(2, 0), rngs=rngs)
        for i, (cin, cout) in enumerate(zip(ins, widths))])
    self.conv_post = Conv2d(widths[-1], 1, (3, 1), padding=(1, 0), rngs=rngs)

  def __call__(self, x):
    """x [B, T, C] -> feature maps, the last being the logits [B, frames, period, 1]."""
    pad = self.period - x.shape[1] % self.period  # DAC pads a whole period when T divides
    x = jnp.pad(x, ((0, 0), (0, pad), (0, 0)), mode="reflect")
    x = x.reshape(x.shape[0], -1, self.period, x.shape[2])
    maps = []
    for conv in self.convs:
      x = jax.nn.leaky_relu(conv(x), 0.1)
      maps.append(x)
    maps.append(self.conv_post(x))
    return maps
