"""The adversarial half of codec training (DAC, EnCodec): audio discriminators with feature
matching, LSGAN (DAC) or hinge (EnCodec) losses, and the discriminator's own update.

The discriminator returns, per sub-discriminator (MPD periods, MRD resolutions, MS-STFT
scales), its feature maps with the logits last. The generator's term is
`adversarial * adv(fake) + feature_matching * L1(features(fake), features(real))`; DAC trains
with 1 and 2. As in the image GAN, the generator steps first and the discriminator then steps
on the same reconstructions (DAC steps the discriminator first; one step apart).
"""
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from models.discriminators.audio import AudioDiscriminator, AudioDiscriminatorConfig
from zoo.train.audio_losses import (discriminator_adversarial_loss, feature_matching_loss,
                                    generator_adversarial_loss)
from zoo.train.optimizer import make_optimizer


def make_audio_discriminator_optimizer(config) -> optax.GradientTransformation:
  """The generator's optimizer with the discriminator's learning rate and clipping (DAC: 10)."""
  gan = config.gan
  clipped = config.copy_and_resolve_references()
  clipped.grad_clip_norm = gan.get("grad_clip_norm", config.grad_clip_norm)
  return make_optimizer(clipped, learning_rate=gan.learning_rate)


def init_audio_discriminator(config):
  """(graphdef, {disc_params, disc_opt_state}) of a fresh audio discriminator."""
  disc = AudioDiscriminator(AudioDiscriminatorConfig(**config.gan.audio.to_dict()),
                            rngs=nnx.Rngs(config.seed + 3))
  graphdef, params = nnx.split(disc, nnx.Param)
  return graphdef, {"disc_params": params,
                    "disc_opt_state": make_audio_discriminator_optimizer(config).init(params)}


def audio_generator_adversarial_loss(disc_graphdef, disc_params, recon, audio, gan):
  """(weighted adversarial + feature-matching term, metrics); no gradient to the discriminator."""
  disc = nnx.merge(disc_graphdef, jax.lax.stop_gradient(disc_params))
  fake = disc(recon.astype(jnp.float32))
  real = jax.tree.map(jax.lax.stop_gradient, disc(audio))
  adversarial = generator_adversarial_loss(fake, gan.loss)
  matching = feature_matching_loss(real, fake)
  total = gan.adversarial * adversarial + gan.feature_matching * matching
  return total, {"adversarial_loss": adversarial, "feature_matching_loss": matching}


def audio_discriminator_update(state, audio, recon, *, graphdef, optimizer, gan):
  """One discriminator step on real `audio` and the generator's `recon` (no gradient to it)."""
  fake = jax.lax.stop_gradient(recon).astype(audio.dtype)

  def loss_fn(params):
    disc = nnx.merge(graphdef, params)
    return discriminator_adversarial_loss(disc(audio), disc(fake), gan.loss)

  loss, grads = jax.value_and_grad(loss_fn)(state["disc_params"])
  updates, opt_state = optimizer.update(grads, state["disc_opt_state"], state["disc_params"])
  new = {"disc_params": optax.apply_updates(state["disc_params"], updates),
         "disc_opt_state": opt_state}
  return new, {"discriminator_loss": loss, "discriminator_grad_norm": optax.tree.norm(grads)}
