"""The GAN half of TiTok stage 2 and single-stage training: the NLayer discriminator's state
and its update (hinge loss + LeCam), run after the generator's update on the same
reconstructions.

As in the official loop, nothing here runs before `discriminator_start`: the trainer compiles a
step without the GAN for those steps and one with it afterwards (a `lax.cond` would do it in one
program, but XLA:CPU runs the convolutions inside a conditional ~10x slower).
"""
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from models.discriminators.nlayer import NLayerDiscriminator, NLayerDiscriminatorConfig
from zoo.train.gan_losses import (GanLossConfig, discriminator_loss, generator_gan_loss,
                                  init_lecam_ema)
from zoo.train.optimizer import make_optimizer

STATE_KEYS = ("disc_params", "disc_opt_state", "lecam_ema")


def gan_loss_config(config) -> GanLossConfig:
  gan = config.gan
  return GanLossConfig(discriminator_start=gan.discriminator_start,
                       discriminator_factor=gan.discriminator_factor,
                       discriminator_weight=gan.discriminator_weight,
                       lecam_regularization_weight=gan.lecam_regularization_weight,
                       lecam_ema_decay=gan.lecam_ema_decay)


def make_discriminator_optimizer(config) -> optax.GradientTransformation:
  # The official discriminator optimizer is the generator's, with its own learning rate.
  return make_optimizer(config, learning_rate=config.gan.learning_rate)


def init_discriminator(config):
  """(graphdef, {disc_params, disc_opt_state, lecam_ema}) of a fresh discriminator."""
  gan = config.gan
  disc = NLayerDiscriminator(
      NLayerDiscriminatorConfig(hidden_channels=gan.hidden_channels, num_stages=gan.num_stages,
                                blur_resample=gan.blur_resample),
      rngs=nnx.Rngs(config.seed + 3))
  graphdef, params = nnx.split(disc, nnx.Param)
  state = {"disc_params": params,
           "disc_opt_state": make_discriminator_optimizer(config).init(params),
           "lecam_ema": init_lecam_ema()}
  return graphdef, state


def generator_adversarial_loss(disc_graphdef, disc_params, recon, step, cfg: GanLossConfig):
  """The generator's weighted GAN term; the discriminator's weights get no gradient."""
  logits = nnx.merge(disc_graphdef, jax.lax.stop_gradient(disc_params))(recon)
  return generator_gan_loss(logits, step, cfg)


def discriminator_update(state, images, recon, step, *, graphdef, optimizer, cfg: GanLossConfig):
  """One discriminator step on real `images` and the generator's `recon` (no gradient to it).

  Returns (the new disc_params / disc_opt_state / lecam_ema, metrics).
  """
  fake = jax.lax.stop_gradient(recon).astype(images.dtype)

  def loss_fn(params):
    # Real and fake in one pass; GroupNorm normalises per sample, so this equals the
    # official two passes.
    real_logits, fake_logits = jnp.split(nnx.merge(graphdef, params)(
        jnp.concatenate([images, fake])), 2)
    loss, ema, metrics = discriminator_loss(real_logits, fake_logits, state["lecam_ema"],
                                            step, cfg)
    return loss, (ema, metrics)

  (_, (ema, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["disc_params"])
  updates, opt_state = optimizer.update(grads, state["disc_opt_state"], state["disc_params"])
  new = {"disc_params": optax.apply_updates(state["disc_params"], updates),
         "disc_opt_state": opt_state, "lecam_ema": ema}
  return new, {**metrics, "discriminator_grad_norm": optax.tree.norm(grads)}
