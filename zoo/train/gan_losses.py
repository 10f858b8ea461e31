"""Hinge GAN losses with LeCam regularisation, as TiTok stage 2 trains them.

Pure functions of logits (1d-tokenizer `modeling/modules/losses.py`, `ReconstructionLoss_Stage2`);
the LeCam EMA is explicit state that callers thread through their step. Formulas:
  d_loss   = factor * 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))
             + lecam_weight * lecam
  lecam    = relu(mean(real) - ema_fake)^2 + relu(ema_real - mean(fake))^2, with the EMA
             *before* this step's update; then ema <- decay * ema + (1 - decay) * mean(logits)
  g_term   = discriminator_weight * factor * (-mean(fake))   (fixed weight, no adaptive one)
  factor   = discriminator_factor if step >= discriminator_start else 0
The LeCam term is not scaled by `factor`. Officially the discriminator step only runs from
`discriminator_start` on (`should_train_discriminator`), so the EMA starts moving there.
Means are over the whole batch given (the official ones are per process).
"""
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class GanLossConfig:
  """Defaults of configs/training/TiTok/stage2/*.yaml."""
  discriminator_start: int = 20_000
  discriminator_factor: float = 1.0
  discriminator_weight: float = 0.01
  lecam_regularization_weight: float = 0.001
  lecam_ema_decay: float = 0.999


class LeCamEMA(NamedTuple):
  real: jax.Array  # EMA of the batch-mean real logit
  fake: jax.Array  # EMA of the batch-mean fake logit


def init_lecam_ema() -> LeCamEMA:
  return LeCamEMA(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def hinge_d_loss(real_logits, fake_logits):
  real = jnp.mean(jax.nn.relu(1.0 - real_logits.astype(jnp.float32)))
  fake = jnp.mean(jax.nn.relu(1.0 + fake_logits.astype(jnp.float32)))
  return 0.5 * (real + fake)


def generator_loss(fake_logits):
  """The generator's adversarial loss: -mean(D(fake))."""
  return -jnp.mean(fake_logits.astype(jnp.float32))


def lecam_loss(real_logits, fake_logits, ema: LeCamEMA, decay: float = 0.999):
  """(unweighted LeCam loss, updated EMA); the EMA update carries no gradient."""
  real_mean = jnp.mean(real_logits.astype(jnp.float32))
  fake_mean = jnp.mean(fake_logits.astype(jnp.float32))
  loss = jax.nn.relu(real_mean - ema.fake) ** 2 + jax.nn.relu(ema.real - fake_mean) ** 2
  new = LeCamEMA(ema.real * decay + jax.lax.stop_gradient(real_mean) * (1.0 - decay),
                 ema.fake * decay + jax.lax.stop_gradient(fake_mean) * (1.0 - decay))
  return loss, new


def should_train_discriminator(step, cfg: GanLossConfig):
  return step >= cfg.discriminator_start


def discriminator_factor(step, cfg: GanLossConfig):
  """`cfg.discriminator_factor` from `discriminator_start` on, else 0 (jit-friendly in step)."""
  return jnp.where(should_train_discriminator(step, cfg), cfg.discriminator_factor, 0.0)


def discriminator_loss(real_logits, fake_logits, ema: LeCamEMA, step, cfg: GanLossConfig):
  """The discriminator step's loss: (loss, new_ema, metrics). Fakes must be stop-gradiented."""
  factor = discriminator_factor(step, cfg)
  loss = factor * hinge_d_loss(real_logits, fake_logits)
  lecam = jnp.zeros((), jnp.float32)
  if cfg.lecam_regularization_weight > 0.0:
    lecam, ema = lecam_loss(real_logits, fake_logits, ema, cfg.lecam_ema_decay)
    lecam = lecam * cfg.lecam_regularization_weight
  loss = loss + lecam
  metrics = {"discriminator_loss": loss, "lecam_loss": lecam,
             "logits_real": jnp.mean(real_logits.astype(jnp.float32)),
             "logits_fake": jnp.mean(fake_logits.astype(jnp.float32))}
  return loss, ema, metrics


def generator_gan_loss(fake_logits, step, cfg: GanLossConfig):
  """The generator's weighted adversarial term and its metrics.

  Before `discriminator_start` the official code does not run the discriminator at all; the
  term is then 0 here too, and callers may skip computing `fake_logits`.
  """
  factor = discriminator_factor(step, cfg)
  active = jnp.logical_and(factor > 0.0, cfg.discriminator_weight > 0.0)
  gan = jnp.where(active, generator_loss(fake_logits), 0.0)  # the official logs 0 when off
  weighted = cfg.discriminator_weight * factor * gan
  return weighted, {"gan_loss": gan, "weighted_gan_loss": weighted,
                    "discriminator_factor": factor}
