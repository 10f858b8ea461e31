"""Multi-scale residual quantization: next-scale residuals, prefixes, scale dropout, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.quantizers.multiscale_rvq import MultiScaleResidualVQ, downsample, upsample

SCALES = (1, 4, 16)


def _quantizer(shared=True, seed=0):
  q = MultiScaleResidualVQ(SCALES, 64, 4, shared_codebook=shared, rngs=nnx.Rngs(seed))
  # Codes spread like the inputs (the default init is tiny), so every scale has work to do.
  for cb in q.codebooks:
    cb[...] = jax.random.normal(jax.random.key(seed + 1), cb.shape)
  return q


def _tokens(seed=0):
  x = jax.random.normal(jax.random.key(seed), (3, 16, 4))
  return x + jnp.linspace(-2, 2, 16)[None, :, None]  # a coarse trend plus detail


def test_ids_are_the_nearest_codes_of_each_scales_residual():
  q, z = _quantizer(), _tokens()
  _, aux = q(z)
  assert [i.shape for i in aux["ids"]] == [(3, 1), (3, 4), (3, 16)]
  residual = np.asarray(z)
  codebook = np.asarray(q.codebook(0))
  for n, ids in zip(SCALES, aux["ids"]):
    coarse = residual.reshape(3, n, 16 // n, 4).mean(2)
    want = ((coarse[..., None, :] - codebook) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(ids, want)
    residual = residual - np.asarray(upsample(codebook[want], 16))


def test_lookup_rebuilds_the_output_and_prefixes_are_coarser():
  q, z = _quantizer(shared=False), _tokens(1)
  z_q, aux = q(z)
  np.testing.assert_allclose(q.lookup(aux["ids"]), z_q, atol=1e-5)
  errors = [float(jnp.mean((q.lookup(aux["ids"][:k]) - z) ** 2)) for k in (1, 2, 3)]
  assert errors[0] > errors[1] > errors[2]
  keep = jnp.array([1, 2, 3])
  z_keep, _ = q(z, keep=keep)
  for b, k in enumerate([1, 2, 3]):
    np.testing.assert_allclose(z_keep[b], q.lookup(aux["ids"][:k])[b], atol=1e-5)


def test_straight_through_gradient_and_codebook_gradient():
  q, z = _quantizer(), _tokens(2)
  grad_z = jax.grad(lambda x: q(x)[0].sum())(z)
  np.testing.assert_allclose(grad_z, np.ones_like(z))

  def loss(model):
    return model(z)[1]["quantizer_loss"]
  grads = nnx.grad(loss)(q)
  assert float(jnp.abs(grads.codebooks[0][...]).sum()) > 0


def test_per_scale_codebooks_and_bits():
  assert len(_quantizer(shared=True).codebooks) == 1
  q = _quantizer(shared=False)
  assert len(q.codebooks) == 3 and q.bits == 21 * 6


def test_area_down_and_linear_up():
  x = jnp.arange(8.0).reshape(1, 8, 1)
  np.testing.assert_allclose(downsample(x, 2)[0, :, 0], [1.5, 5.5])
  np.testing.assert_allclose(upsample(jnp.array([[[0.0], [4.0]]]), 4)[0, :, 0], [0, 1, 3, 4])


def test_bad_scales_and_inputs():
  with pytest.raises(ValueError, match="grow"):
    MultiScaleResidualVQ((4, 2), 8, 4, rngs=nnx.Rngs(0))
  q = _quantizer()
  with pytest.raises(ValueError, match="divide"):
    q(jnp.zeros((1, 12, 4)))
  with pytest.raises(ValueError, match="code_dim"):
    q(jnp.zeros((1, 16, 3)))
  with pytest.raises(ValueError, match=r"scale 1 ids must be \[B, 4\]"):
    q.lookup((jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 3), jnp.int32)))
