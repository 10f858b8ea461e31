"""Diagonal-Gaussian (KL) bottleneck: the VAE variant's continuous tokens.

The last axis holds mean || logvar (LARP interleaves them: mean, logvar, mean, ...); logvar is
clamped to [-30, 20] as in latent-diffusion.
"""
import jax
import jax.numpy as jnp


class DiagonalGaussian:
  """A posterior over continuous tokens; parameters [..., 2C] -> tokens [..., C]."""

  def __init__(self, parameters, *, interleaved: bool = False):
    parameters = parameters.astype(jnp.float32)
    if parameters.shape[-1] % 2:
      raise ValueError(f"last axis must hold mean and logvar (even size), got {parameters.shape}")
    if interleaved:
      self.mean, logvar = parameters[..., 0::2], parameters[..., 1::2]
    else:
      self.mean, logvar = jnp.split(parameters, 2, axis=-1)
    self.logvar = jnp.clip(logvar, -30.0, 20.0)
    self.std = jnp.exp(0.5 * self.logvar)
    self.var = jnp.exp(self.logvar)

  def mode(self):
    return self.mean

  def sample(self, key):
    return self.mean + self.std * jax.random.normal(key, self.mean.shape, jnp.float32)

  def kl(self):
    """KL to N(0, I), summed over every axis but the batch axis: [B]."""
    per_elem = 0.5 * (self.mean ** 2 + self.var - 1.0 - self.logvar)
    return per_elem.reshape(per_elem.shape[0], -1).sum(axis=1)
