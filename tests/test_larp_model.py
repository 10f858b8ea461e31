"""LARP's API: shapes, fewer-frame encoding, training forward, and clear errors on bad input."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.layers.sincos import sincos_3d


@pytest.fixture(scope="module")
def model():
  return zoo.create("larp_tiny")


@pytest.fixture(scope="module")
def video():
  return np.random.default_rng(0).random((2, 8, 32, 32, 3)).astype(np.float32)


def test_encode_decode_shapes(model, video):
  ids = model.encode(video)
  assert ids.shape == (2, 32) and ids.dtype == jnp.int32
  out = model.decode(ids)
  assert out.shape == video.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  assert model.decode(model.encode(video[:, :4]), frames=4).shape == (2, 4, 32, 32, 3)


def test_training_forward_samples_codes(model, video):
  a = model(jnp.asarray(video), train=True, rngs=nnx.Rngs(sample=0), progress=0.5)
  b = model(jnp.asarray(video), train=True, rngs=nnx.Rngs(sample=1), progress=0.5)
  assert a["recon"].shape == video.shape
  assert {"latent_ce"} == set(a["losses"]) and np.isfinite(float(a["losses"]["latent_ce"]))
  assert not np.array_equal(a["ids"], b["ids"])  # softmax(cos / 0.03) sampling
  ev = model(jnp.asarray(video), train=False)
  np.testing.assert_array_equal(ev["ids"], model.encode(video))  # argmax at evaluation
  assert "latent_ce" not in ev["losses"]


def test_sincos_3d_layout():
  pe = sincos_3d(8, 2, 3)
  assert pe.shape == (12, 8) and pe.dtype == np.float32
  # Token (t=0, h=0, w=0): sin(0) = 0 and cos(0) = 1 in every half.
  np.testing.assert_allclose(pe[0], [0, 0, 1, 1, 0, 0, 1, 1] + np.array([0, 0, 0, 0, 1, 1, 1, 1]))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 3, 8, 32, 32), np.float32), "3 channels on the last axis"),
    (np.zeros((2, 8, 32, 32), np.float32), "NTHWC"),
    (np.zeros((2, 6, 32, 32, 3), np.float32), "multiple of the temporal patch 4"),
    (np.zeros((2, 8, 48, 48, 3), np.float32), "must be 32x32"),
    (np.zeros((2, 12, 32, 32, 3), np.float32), "1 to 8 frames"),
    (np.full((2, 8, 32, 32, 3), 255.0, np.float32), r"must be in \[0, 1\]"),
    (np.full((2, 8, 32, 32, 3), np.nan, np.float32), "NaN"),
    (np.zeros((2, 8, 32, 32, 3), np.uint8), "divide uint8 by 255"),
])
def test_bad_videos(model, bad, match):
  with pytest.raises((ValueError, TypeError), match=match):
    model.encode(bad)


def test_bad_tokens(model):
  with pytest.raises(ValueError, match=r"\[B, 32\]"):
    model.decode(np.zeros((2, 16), np.int32))
  with pytest.raises(ValueError, match=r"in \[0, 256\)"):
    model.decode(np.full((2, 32), 256, np.int32))
  with pytest.raises(TypeError, match="integers"):
    model.decode(np.zeros((2, 32), np.float32))
  with pytest.raises(ValueError, match="multiples of 4"):
    model.decode(np.zeros((2, 32), np.int32), frames=6)
  with pytest.raises(ValueError, match="samples codes"):
    model(jnp.zeros((1, 8, 32, 32, 3)), train=True)


def test_config_errors():
  with pytest.raises(ValueError, match="do not split"):
    zoo.create("larp_tiny", frame_num=10)
  with pytest.raises(ValueError, match="GPT-C prior predicts codes of the VQ"):
    zoo.create("larp_tiny", regularizer="kl")
  with pytest.raises(ValueError, match="unknown GPT-C size"):
    zoo.create("larp_tiny", prior="gptc-XL")
