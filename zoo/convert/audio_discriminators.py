"""DAC's discriminator checkpoint (`dac.model.discriminator.Discriminator` state dict) ->
models/discriminators/audio.py. Convs keep legacy weight norm; DAC wraps every conv but the
last of a stack as `Sequential(conv, LeakyReLU)`, hence the `.0` in its names."""
from models.discriminators.mpd import PeriodDiscriminator
from zoo.convert import common
from zoo.convert.common import Rule

_CONV = ("weight_g", "weight_v", "bias")


def _conv(official: str, path: str) -> list[Rule]:
  return [Rule(f"{official}.{n}", f"{path}.{n}") for n in _CONV]


def table(model) -> list[Rule]:
  """Rules for an AudioDiscriminator (built, or from nnx.eval_shape)."""
  rules = []
  for i, disc in enumerate(model.discriminators):
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


def load_state_dict(model, state_dict: dict, *, model_name: str = "dac_discriminator"):
  common.load_state_dict(model, state_dict, table(model), model_name=model_name)
