"""taming's adaptive GAN weight (VQLPIPSWithDiscriminator.calculate_adaptive_weight).

    d_weight = clip(|grad_L nll| / (|grad_L g| + 1e-4), 0, 1e4) * discriminator_weight
    loss     = nll + d_weight * factor * g,   d_weight held constant (detached)

where L is the decoder's last layer, nll the reconstruction (+ perceptual) loss and g the
generator's -mean(D(fake)). One forward and two backward passes (jax.vjp with two cotangents)
give both gradients over all parameters; their sum with the weight is the step's gradient,
exactly what autograd of the detached-weight loss gives.
"""
import functools

import jax
import jax.numpy as jnp

EPS = 1e-4
MAX_WEIGHT = 1e4


def _leaf(tree, path: str):
  try:
    node = functools.reduce(lambda t, k: t[int(k) if k.isdigit() else k], path.split("."), tree)
  except (KeyError, IndexError, TypeError) as e:
    raise ValueError(f"adaptive GAN weight: the model has no parameter {path!r}") from e
  leaves = jax.tree.leaves(node)
  if len(leaves) != 1:
    raise ValueError(f"adaptive GAN weight: {path!r} names {len(leaves)} arrays, not one")
  return leaves[0]


def adaptive_weight(nll_grads, gan_grads, *, last_layer: str, discriminator_weight: float):
  g_nll = jnp.linalg.norm(_leaf(nll_grads, last_layer).astype(jnp.float32))
  g_gan = jnp.linalg.norm(_leaf(gan_grads, last_layer).astype(jnp.float32))
  return jnp.clip(g_nll / (g_gan + EPS), 0.0, MAX_WEIGHT) * discriminator_weight


def adaptive_gan_grads(parts_fn, params, *, last_layer: str, discriminator_weight: float,
                       factor):
  """`parts_fn(params) -> ((nll, g), aux)` -> (loss, d_weight, grads, aux)."""
  (nll, gan), vjp_fn, aux = jax.vjp(parts_fn, params, has_aux=True)
  one, zero = jnp.ones_like(nll), jnp.zeros_like(nll)
  (nll_grads,) = vjp_fn((one, zero))
  (gan_grads,) = vjp_fn((zero, one))
  d_weight = jax.lax.stop_gradient(adaptive_weight(
      nll_grads, gan_grads, last_layer=last_layer, discriminator_weight=discriminator_weight))
  scale = d_weight * factor
  grads = jax.tree.map(lambda a, b: a + scale * b, nll_grads, gan_grads)
  return nll + scale * gan, d_weight, grads, aux
