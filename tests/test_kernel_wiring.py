"""The models reach the fused kernels: attention and nearest-code search go through the
pallas_kernels dispatchers, so a zoo-wide impl switches every model at once."""
import jax
import jax.numpy as jnp
import numpy as np

from pallas_kernels import default_impl
from zoo import registry


def uses_pallas(fn, *args) -> bool:
  return "pallas_call" in str(jax.make_jaxpr(fn)(*args))


def test_titok_runs_the_kernels_under_a_zoo_wide_impl():
  model = registry.create("titok_tiny_vq", seed=0)
  images = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3))
  encode = lambda x: model(x, train=False)
  assert not uses_pallas(encode, images)  # CPU default: plain XLA
  want = encode(images)
  with default_impl("interpret"):  # the TPU kernels, interpreted on CPU
    assert uses_pallas(encode, images)
    got = encode(images)
  np.testing.assert_array_equal(np.asarray(got["ids"]), np.asarray(want["ids"]))
  np.testing.assert_allclose(np.asarray(got["recon"]), np.asarray(want["recon"]), atol=1e-4)


def test_vq_search_goes_through_the_dispatcher():
  model = registry.create("titok_tiny_vq", seed=0)
  z = jax.random.normal(jax.random.key(1), (3, 32, 16))
  with default_impl("interpret"):
    assert uses_pallas(lambda z: model.quantize(z)[1]["ids"], z)
    ids = model.quantize(z)[1]["ids"]
  np.testing.assert_array_equal(np.asarray(ids), np.asarray(model.quantize(z)[1]["ids"]))
