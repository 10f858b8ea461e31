"""Official `NLayerDiscriminator` state dicts (1d-tokenizer) -> models.discriminators.nlayer.

Official key layout (torch Sequential indices):
  block_in.0                conv 5x5                -> conv_in
  blocks.{i}.0 / .2         conv 3x3 / GroupNorm    -> blocks.{i}.conv / blocks.{i}.norm
  blocks.{i}.1.kernel       fixed blur buffer [1, 1, k, k] (blur_resample only): checked, not loaded
  to_logits.0 / .2          conv 1x1 / conv 5x5     -> conv_mid / conv_out
A stage-2 loss-module checkpoint nests these under `discriminator.`; `split_loss_module_state`
takes them (and the LeCam EMA buffers) out of it.
"""
import numpy as np

from models.discriminators.nlayer import NLayerDiscriminatorConfig, blur_kernel
from zoo.convert import common
from zoo.convert.common import CONV2D, Rule, norm_rules

LECAM_BUFFERS = ("ema_real_logits_mean", "ema_fake_logits_mean")


def _conv(t, p):
  return [Rule(f"{t}.weight", f"{p}.kernel", CONV2D), Rule(f"{t}.bias", f"{p}.bias")]


def table(cfg: NLayerDiscriminatorConfig) -> list[Rule]:
  rules = _conv("block_in.0", "conv_in")
  for i in range(cfg.num_stages):
    rules += _conv(f"blocks.{i}.0", f"blocks.{i}.conv")
    rules += norm_rules(f"blocks.{i}.2", f"blocks.{i}.norm")
  return rules + _conv("to_logits.0", "conv_mid") + _conv("to_logits.2", "conv_out")


def fixed_buffers(cfg: NLayerDiscriminatorConfig) -> dict[str, np.ndarray]:
  """The constant blur kernels the official state dict carries, {name: [1, 1, k, k]}."""
  if not cfg.blur_resample:
    return {}
  k = blur_kernel(cfg.blur_kernel_size)[None, None]
  return {f"blocks.{i}.1.kernel": k for i in range(cfg.num_stages)}


def load_state_dict(model, state_dict, *, model_name: str = "nlayer_discriminator"):
  """Fills `model`; the blur buffers must be present and equal to the fixed kernel."""
  buffers = fixed_buffers(model.config)
  problems = []
  for name, want in buffers.items():
    got = state_dict.get(name)
    if got is None:
      problems.append(f"missing blur buffer {name}")
    elif np.shape(got) != want.shape or not np.allclose(np.asarray(got), want, atol=1e-7):
      problems.append(f"blur buffer {name} is not the fixed {want.shape[-1]}-tap kernel "
                      f"(got shape {np.shape(got)}); check blur_kernel_size/blur_resample")
  if problems:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  params = {k: v for k, v in state_dict.items() if k not in buffers}
  common.load_state_dict(model, params, table(model.config), model_name=model_name)


def split_loss_module_state(state_dict) -> tuple[dict, dict]:
  """A `ReconstructionLoss_Stage2` state dict -> (discriminator tensors, LeCam EMA buffers).

  Everything else in it (the frozen perceptual network) is left out on purpose.
  """
  disc = {k[len("discriminator."):]: v for k, v in state_dict.items()
          if k.startswith("discriminator.")}
  lecam = {k: v for k, v in state_dict.items() if k in LECAM_BUFFERS}
  return disc, lecam
