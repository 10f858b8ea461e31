"""The training state of a config: the model, its parameters, optimizer and EMA state, the
discriminator's, their shardings, and the model of a finished run (`load_trained_model`).

Kept apart from the loop (trainer.py) so that what only needs a model and its state (warm
starts, eval.py) does not import the loop.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from zoo import registry
from zoo.train import sharding
from zoo.train.audio_gan import init_audio_discriminator, make_audio_discriminator_optimizer
from zoo.train.checkpointing import Checkpointer
from zoo.train.discriminator import init_discriminator, make_discriminator_optimizer
from zoo.train.model_state import merge_model
from zoo.train.optimizer import make_optimizer
from zoo.train.video_gan import (init_video_discriminator, is_video_gan,
                                 make_video_discriminator_optimizer)


def audio_gan(config) -> bool:
  return config.gan.get("discriminator", "nlayer") == "audio"


def build_discriminator(config, model_config):
  """(graphdef, state entries) of the config's discriminator: NLayer (images), audio, or the
  transformer video discriminator (sized by the model's clips)."""
  if is_video_gan(config):
    return init_video_discriminator(config, model_config)
  return init_audio_discriminator(config) if audio_gan(config) else init_discriminator(config)


def discriminator_optimizer(config):
  if audio_gan(config):
    return make_audio_discriminator_optimizer(config)
  if is_video_gan(config):
    return make_video_discriminator_optimizer(config)
  return make_discriminator_optimizer(config)


def init_state(model: nnx.Module, config):
  """(graphdef, non-trained state, trained state) of `model` under `config`.

  Buffers a training forward updates (nnx.BatchStat: EnCodec's EMA codebooks) live in the
  state as "batch_stats", so that they move from step to step and are checkpointed.
  """
  graphdef, params, batch_stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
  state = {
      "step": jnp.zeros((), jnp.int32),
      "params": params,
      "opt_state": make_optimizer(config, frozen=config.frozen).init(params),
      "ema": jax.tree.map(jnp.copy, params),
      "rng": jax.random.PRNGKey(config.seed),
  }
  if config.codebook_reanchor:
    if getattr(model, "quantize", None) is None or not hasattr(model.quantize, "embedding"):
      raise ValueError("codebook_reanchor needs a model with a VQ codebook")
    if "quantize" in config.frozen:
      raise ValueError("codebook_reanchor moves the codebook, which config.frozen freezes")
    state["codebook_usage"] = jnp.zeros((model.quantize.codebook_size,), jnp.float32)
  if jax.tree.leaves(batch_stats):
    if config.grad_accum_steps > 1:
      raise ValueError("a model with EMA buffers (nnx.BatchStat) trains with grad_accum_steps 1")
    state["batch_stats"] = batch_stats
  if config.gan.enabled:
    state.update(build_discriminator(config, model.config)[1])
  return graphdef, rest, state


def state_shardings(state, config, mesh):
  """Parameters and EMA by their logical axes, Adam moments like their parameters."""
  replicated = sharding.replicated(mesh)
  params = sharding.param_shardings(state["params"], mesh)
  shardings = jax.tree.map(lambda _: replicated, state)  # step, rng, usage, LeCam EMA
  shardings.update(params=params, ema=params, opt_state=sharding.optimizer_shardings(
      make_optimizer(config, frozen=config.frozen), state["opt_state"], params, mesh))
  if "disc_params" in state:
    disc = sharding.param_shardings(state["disc_params"], mesh)
    shardings.update(disc_params=disc, disc_opt_state=sharding.optimizer_shardings(
        discriminator_optimizer(config), state["disc_opt_state"], disc, mesh))
  return shardings


def sharded_state_initializer(config, mesh):
  """(graphdef, state shardings, a jitted () -> (state, rest)) for `config` on `mesh`.

  Parameters and optimizer state are initialised inside one jit whose out_shardings are the
  training shardings, so no device ever holds an unsharded copy: models bigger than one
  device (FSDP) start the same way as small ones.
  """
  def create():
    _, rest, state = init_state(create_model(config), config)
    return state, rest

  abstract_state, _ = jax.eval_shape(create)
  shardings = state_shardings(abstract_state, config, mesh)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: create_model(config)))
  return graphdef, shardings, jax.jit(create, out_shardings=(shardings,
                                                             sharding.replicated(mesh)))


def create_sharded_state(config, mesh):
  """(graphdef, rest, state, state shardings), the state created directly on its devices."""
  graphdef, shardings, create = sharded_state_initializer(config, mesh)
  state, rest = create()
  return graphdef, rest, state, shardings


def create_model(config) -> nnx.Module:
  return registry.create(config.model, seed=config.seed, dtype=jnp.dtype(config.dtype),
                         **config.model_overrides.to_dict())


def load_trained_model(workdir, *, weights: str = "ema", step: int | None = None) -> nnx.Module:
  """The model of a training run with its `weights` ("ema" or "params") from the checkpoint."""
  workdir = pathlib.Path(workdir)
  config_file = workdir / "config.json"
  if not config_file.is_file():
    raise FileNotFoundError(f"{workdir} is not a training workdir (no config.json)")
  if weights not in ("ema", "params"):
    raise ValueError(f"weights must be 'ema' or 'params', got {weights!r}")
  config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  model = create_model(config)
  graphdef, rest, state = init_state(model, config)
  checkpointer = Checkpointer(workdir / "checkpoints", every_steps=1, keep=1)
  if checkpointer.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}")
  state = checkpointer.restore_state(state, step)
  checkpointer.close()
  return merge_model(graphdef, state[weights], rest, state.get("batch_stats"))
