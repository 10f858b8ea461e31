"""Layers against their plain definitions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.layers.attention import dot_product_attention


def test_attention_matches_jax_reference_with_mask():
  rng = np.random.default_rng(0)
  q, k, v = (jnp.asarray(rng.standard_normal((2, 5, 3, 8)), jnp.float32) for _ in range(3))
  mask = jnp.asarray(rng.random((2, 1, 5, 5)) > 0.3) | jnp.eye(5, dtype=bool)
  reference = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")
  np.testing.assert_allclose(dot_product_attention(q, k, v, mask=mask), reference, atol=1e-5)
  with pytest.raises(ValueError, match="B, S, H, D"):
    dot_product_attention(q[0], k, v)
