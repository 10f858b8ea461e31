"""The frozen networks a training config needs: the stage-1 teacher and the perceptual nets.

Each comes back as (graphdef, params): the params travel into the jitted step as an argument
(replicated), never as closed-over constants that would be baked into the compiled program.
Without a checkpoint a network is seeded at random, which only the tiny CPU configs should do.
"""
from absl import logging
from flax import nnx

from zoo import registry
from zoo.train.perceptual_loss import NETS, parse_mode


def create_teacher_model(config) -> nnx.Module:
  """The MaskGIT-VQGAN whose codes stage 1 predicts and whose decoder stage 2 starts from."""
  overrides = config.teacher_overrides.to_dict()
  if config.teacher_checkpoint:
    return registry.from_pretrained(config.teacher, config.teacher_checkpoint, **overrides)
  logging.warning("no teacher_checkpoint: using a randomly initialised %s", config.teacher)
  return registry.create(config.teacher, seed=config.seed + 1, **overrides)


def perceptual_weights(config) -> dict:
  """{"lpips": w, "convnext": w} of the config's perceptual mode, or {} when it is off."""
  if config.loss.get("perceptual", 0.0) <= 0.0:
    return {}
  return parse_mode(config.loss.perceptual_mode)


def create_frozen_nets(config) -> dict:
  """{"teacher" | "lpips" | "convnext": (graphdef, params)} for the nets `config` uses."""
  nets = {}
  if config.objective == "proxy_codes":
    nets["teacher"] = nnx.split(create_teacher_model(config))
  elif config.objective != "pixels":
    raise ValueError(f"unknown objective {config.objective!r}; 'pixels' or 'proxy_codes'")
  for key in perceptual_weights(config):
    checkpoint = config.perceptual_checkpoints.get(key, "")
    overrides = config.perceptual_overrides.get(key, {})
    overrides = overrides.to_dict() if hasattr(overrides, "to_dict") else dict(overrides)
    if checkpoint:
      net = registry.from_pretrained(NETS[key], checkpoint, **overrides)
    else:
      logging.warning("no checkpoint for the %s perceptual net: randomly initialised", key)
      net = registry.create(NETS[key], seed=config.seed + 2, **overrides)
    nets[key] = nnx.split(net)
  return nets
