"""LARP's adversarial training of video tokenizers (models/loss.py `VQLPIPSWithDiscriminator`
with disc_type 'transformer', disc_loss 'ns_smooth'), for the shared trainer.

  generator:      disc_weight * (-mean(log sigmoid(D(fake))))
  discriminator:  BCE(D(real), 1 - |N(0, 1)| * 0.15 clamped >= 0.7)
                  + BCE(D(fake), |N(0, 1)| * 0.15 clamped <= 0.3)        (one-sided label noise)
                  + lecam_weight * (lecam_weight * lecam)                 (the official weighs it
                  twice: loss() multiplies lecam_reg by it, then forward() again)
LeCam uses the EMAs before this step's update (decay 0.999). The discriminator updates every
`gan.update_every` steps (d_update_freq 5 in the reproduce recipe); the trainer compiles one
program with the update and one without. Both start at `gan.discriminator_start`.
"""
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from models.discriminators.video_transformer import (VideoDiscriminatorConfig,
                                                     VideoTransformerDiscriminator)
from zoo.train.gan_losses import init_lecam_ema, lecam_loss
from zoo.train.optimizer import make_optimizer


def is_video_gan(config) -> bool:
  return config.gan.enabled and config.gan.get("discriminator", "nlayer") == "video_transformer"


def make_video_discriminator_optimizer(config) -> optax.GradientTransformation:
  return make_optimizer(config, learning_rate=config.gan.learning_rate)


def init_video_discriminator(config, model_config):
  gan = config.gan
  disc = VideoTransformerDiscriminator(VideoDiscriminatorConfig(
      input_size=model_config.input_size, frame_num=model_config.frame_num,
      temporal_patch_size=gan.temporal_patch_size, patch_size=gan.patch_size, width=gan.width,
      num_heads=gan.num_heads, depth=gan.depth), rngs=nnx.Rngs(config.seed + 3))
  graphdef, params = nnx.split(disc, nnx.Param)
  return graphdef, {"disc_params": params,
                    "disc_opt_state": make_video_discriminator_optimizer(config).init(params),
                    "lecam_ema": init_lecam_ema()}


def ns_generator_loss(fake_logits):
  return -jnp.mean(jax.nn.log_sigmoid(fake_logits.astype(jnp.float32)))


def _bce_with_logits(logits, targets):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets))


def ns_smooth_discriminator_loss(real_logits, fake_logits, key):
  k_real, k_fake = jax.random.split(key)
  real_target = jnp.maximum(1.0 - jnp.abs(jax.random.normal(k_real, real_logits.shape)) * 0.15,
                            0.7)
  fake_target = jnp.minimum(jnp.abs(jax.random.normal(k_fake, fake_logits.shape)) * 0.15, 0.3)
  return _bce_with_logits(real_logits, real_target) + _bce_with_logits(fake_logits, fake_target)


def video_generator_adversarial_loss(disc_graphdef, disc_params, recon, gan):
  logits = nnx.merge(disc_graphdef, jax.lax.stop_gradient(disc_params))(recon)
  g = ns_generator_loss(logits)
  weighted = gan.discriminator_weight * g
  return weighted, {"gan_loss": g, "weighted_gan_loss": weighted}


def video_discriminator_update(state, video, recon, key, *, graphdef, optimizer, gan):
  fake = jax.lax.stop_gradient(recon).astype(video.dtype)

  def loss_fn(params):
    real_logits, fake_logits = jnp.split(nnx.merge(graphdef, params)(
        jnp.concatenate([video, fake])), 2)
    d_loss = ns_smooth_discriminator_loss(real_logits, fake_logits, key)
    lecam, ema = lecam_loss(real_logits, fake_logits, state["lecam_ema"], gan.lecam_ema_decay)
    w = gan.lecam_regularization_weight
    total = d_loss + w * (w * lecam)
    return total, (ema, {"discriminator_loss": d_loss, "lecam_loss": lecam,
                         "logits_real": jnp.mean(real_logits), "logits_fake": jnp.mean(fake_logits)})

  (_, (ema, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["disc_params"])
  updates, opt_state = optimizer.update(grads, state["disc_opt_state"], state["disc_params"])
  new = {"disc_params": optax.apply_updates(state["disc_params"], updates),
         "disc_opt_state": opt_state, "lecam_ema": ema}
  return new, {**metrics, "discriminator_grad_norm": optax.tree.norm(grads)}
