"""Discriminator checkpoints -> models/discriminators/audio.py: DAC's
(`dac.model.discriminator.Discriminator`; every conv but the last of a stack is wrapped as
`Sequential(conv, LeakyReLU)`, hence the `.0` in its names) and EnCodec's
(`encodec.msstftd.MultiScaleSTFTDiscriminator`; NormConv2d modules, hence `.conv`, the first
conv of each scale without weight norm). Each family is numbered on its own."""
import numpy as np

from models.discriminators.mpd import PeriodDiscriminator
from models.discriminators.msstft import STFTDiscriminator
from models.layers.spectral import hann_window
from zoo.convert import common
from zoo.convert.common import Rule

_CONV = ("weight_g", "weight_v", "bias")


def _conv(official: str, path: str) -> list[Rule]:
  return [Rule(f"{official}.{n}", f"{path}.{n}") for n in _CONV]


def table(model) -> list[Rule]:
  """Rules for an AudioDiscriminator (built, or from nnx.eval_shape)."""
  rules = []
  dac = [d for d in model.discriminators if not isinstance(d, STFTDiscriminator)]
  encodec = [d for d in model.discriminators if isinstance(d, STFTDiscriminator)]
  for k, disc in enumerate(encodec):
    path = f"discriminators.{len(dac) + k}"
    official = f"discriminators.{k}"
    rules.append(Rule(f"{official}.convs.0.conv.weight", f"{path}.convs.0.weight"))
    rules.append(Rule(f"{official}.convs.0.conv.bias", f"{path}.convs.0.bias"))
    for j in range(1, len(disc.convs)):
      rules += _conv(f"{official}.convs.{j}.conv", f"{path}.convs.{j}")
    rules += _conv(f"{official}.conv_post.conv", f"{path}.conv_post")
  for i, disc in enumerate(dac):
    prefix = f"discriminators.{i}"
    if isinstance(disc, PeriodDiscriminator):
      for j in range(len(disc.convs)):
        rules += _conv(f"{prefix}.convs.{j}.0", f"{prefix}.convs.{j}")
    else:
      for b, stack in enumerate(disc.band_convs):
        for j in range(len(stack)):
          rules += _conv(f"{prefix}.band_convs.{b}.{j}.0", f"{prefix}.band_convs.{b}.{j}")
    rules += _conv(f"{prefix}.conv_post", f"{prefix}.conv_post")
  return rules


def _drop_windows(state_dict: dict, model_name: str) -> dict:
  """torchaudio's Spectrogram stores its window as a buffer (`spec_transform.window`); ours is
  computed. Checked to be the periodic Hann window, then left out."""
  kept = {}
  for name, value in state_dict.items():
    if name.endswith(".spec_transform.window"):
      if not np.allclose(value, hann_window(len(value)), atol=1e-6):
        raise common.CheckpointMismatchError(
            f"checkpoint does not fit {model_name}: {name} is not a periodic Hann window")
      continue
    kept[name] = value
  return kept


def load_state_dict(model, state_dict: dict, *, model_name: str = "dac_discriminator"):
  common.load_state_dict(model, _drop_windows(state_dict, model_name), table(model),
                         model_name=model_name)
