"""FSQ against FlexTok's implementation (tests/golden/make_fsq_golden.py), ids, gradients."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.quantizers.fsq import FSQ

GOLDEN = pathlib.Path(__file__).parent / "golden" / "fsq.npz"
LEVELS = [8, 8, 8, 5, 5, 5]


def test_matches_flextok():
  golden = np.load(GOLDEN)
  fsq = FSQ(LEVELS)
  quant, aux = fsq(jnp.asarray(golden["z"]))
  np.testing.assert_allclose(np.asarray(quant), golden["quant"], atol=1e-6)
  np.testing.assert_array_equal(np.asarray(aux["ids"]), golden["ids"])
  assert aux["ids"].dtype == jnp.int32
  np.testing.assert_allclose(np.asarray(fsq.lookup(jnp.asarray(golden["some_ids"]))),
                             golden["codes"], atol=1e-7)
  assert fsq.codebook_size == 64_000


def test_ids_and_codes_are_inverse_over_the_whole_codebook():
  fsq = FSQ(LEVELS)
  ids = jnp.arange(fsq.codebook_size, dtype=jnp.int32)
  codes = fsq.lookup(ids)
  np.testing.assert_array_equal(np.asarray(fsq.codes_to_ids(codes)), np.asarray(ids))
  assert float(codes.min()) == -1.0 and float(codes.max()) == 1.0


def test_straight_through_gradient_and_quant_dropout():
  fsq = FSQ(LEVELS, drop_quant_p=0.5)
  z = jax.random.normal(jax.random.key(0), (16, 6))
  grad = jax.grad(lambda z: fsq(z)[0].sum())(z)
  expected = jax.grad(lambda z: (fsq.bound(z) / jnp.asarray([4, 4, 4, 2, 2, 2.0])).sum())(z)
  np.testing.assert_allclose(np.asarray(grad), np.asarray(expected), rtol=1e-6)
  quant, _ = fsq(z, train=True, rngs=nnx.Rngs(sample=1))
  scaled = np.asarray(quant) * np.asarray([4, 4, 4, 2, 2, 2])
  unrounded = ~np.all(np.isclose(scaled, np.round(scaled)), axis=1)
  assert 0 < unrounded.sum() < 16  # some samples skip rounding, whole samples at a time
  rounded, _ = fsq(z)  # evaluation always rounds
  scaled = np.asarray(rounded) * np.asarray([4, 4, 4, 2, 2, 2])
  np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-6)


def test_bad_inputs():
  with pytest.raises(ValueError, match="levels"):
    FSQ([8, 1])
  with pytest.raises(ValueError, match="channels"):
    FSQ(LEVELS)(jnp.zeros((2, 5)))
  with pytest.raises(TypeError, match="integers"):
    FSQ(LEVELS).lookup(jnp.zeros((2,)))
  with pytest.raises(ValueError, match="rngs"):
    FSQ(LEVELS, drop_quant_p=0.1)(jnp.zeros((2, 6)), train=True)
