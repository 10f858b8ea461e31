"""encode/decode refuse bad images and tokens with an error that names the problem, and accept
the valid edge cases (fewer tokens, empty batches, calls under jit)."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.layers.maskgit_cnn import MaskGitCnnConfig
from zoo import registry
from zoo.convert.common import expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(2, 64, 64, 3)).astype(np.float32)
SMALL_CNN = MaskGitCnnConfig(hidden_channels=32, num_res_blocks=1, z_channels=32)


def seeded(name, **overrides):
  """Seeded weights through the converter: much faster than a random init on CPU."""
  entry = registry.get(name)
  model = nnx.eval_shape(lambda: registry.create(name, **overrides))
  shapes = expected_torch_shapes(model, entry.table(model.config))
  entry.load_state_dict(model, seeded_state_dict(shapes), model_name=name)
  return model


@pytest.fixture(scope="module")
def vq():
  return seeded("titok_tiny_vq")  # 64 px, K = 32, 1024 codes


@pytest.fixture(scope="module")
def vae():
  return seeded("titok_tiny_vae")  # 64 px, K = 32, 8 channels


@pytest.fixture(scope="module")
def maskgit():
  return seeded("maskgit_vqgan_f16", image_size=64, cnn=SMALL_CNN)  # 4x4 = 16 ids


def _nan_images():
  x = IMAGES.copy()
  x[1, 5, 5, 0] = np.nan
  return x


BAD_IMAGES = {
    "size": (IMAGES[:, :32, :32], ValueError, r"must be 64x64; got 32x32"),
    "nchw": (IMAGES.transpose(0, 3, 1, 2), ValueError, r"3 channels on the last axis \(NHWC\)"),
    "rank3": (IMAGES[0], ValueError, r"must be NHWC \[B, H, W, 3\]; got shape \(64, 64, 3\)"),
    "rank5": (IMAGES[None], ValueError, r"must be NHWC"),
    "gray": (IMAGES[..., :1], ValueError, r"3 channels"),
    "uint8": ((IMAGES * 255).astype(np.uint8), TypeError, r"must be float .* got dtype uint8"),
    "0_255": (IMAGES * 255, ValueError, r"must be in \[0, 1\]; got values in \[0\.\d+, 25\d"),
    "negative": (IMAGES * 2 - 1, ValueError, r"must be in \[0, 1\]; got values in \[-"),
    "nan": (_nan_images(), ValueError, r"NaN"),
    "inf": (np.where(IMAGES > 0.99, np.inf, IMAGES).astype(np.float32), ValueError, r"Inf"),
    "list": (IMAGES.tolist(), ValueError, r"must be NHWC"),
}


@pytest.mark.parametrize("model", ["vq", "vae", "maskgit"])
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_encode_refuses_bad_images(request, model, case):
  model = request.getfixturevalue(model)
  x, error, match = BAD_IMAGES[case]
  with pytest.raises(error, match=match):
    model.encode(jnp.asarray(x) if isinstance(x, np.ndarray) else x)


def test_numpy_and_half_precision_images_are_fine(vq):
  ids = np.asarray(vq.encode(jnp.asarray(IMAGES)))
  np.testing.assert_array_equal(np.asarray(vq.encode(IMAGES)), ids)  # numpy input
  assert vq.encode(jnp.asarray(IMAGES, jnp.bfloat16)).shape == (2, 32)


@pytest.mark.parametrize("case,error,match", [
    ("too_big", ValueError, r"must be in \[0, 1024\); got \[\d+, 1024\]"),
    ("negative", ValueError, r"must be in \[0, 1024\); got \[-1, "),
    ("float", TypeError, r"must be integers; got float32"),
    ("too_many", ValueError, r"between 1 and 32 tokens can be decoded; got 33"),
    ("zero", ValueError, r"between 1 and 32 tokens can be decoded; got 0"),
    ("rank1", ValueError, r"must be \[B, k\]; got shape \(32,\)"),
    ("rank3", ValueError, r"must be \[B, k\]"),
    ("list", TypeError, r"must be an array; got list"),
])
def test_decode_refuses_bad_ids(vq, case, error, match):
  ids = RNG.integers(0, 1024, size=(2, 32)).astype(np.int32)
  bad = {"too_big": np.where(ids == ids.max(), 1024, ids), "negative": np.where(ids == 0, -1, ids),
         "float": ids.astype(np.float32), "too_many": np.concatenate([ids, ids[:, :1]], 1),
         "zero": ids[:, :0], "rank1": ids[0], "rank3": ids[..., None], "list": ids.tolist()}[case]
  if case == "negative":
    bad[0, 0] = -1
  with pytest.raises(error, match=match):
    vq.decode(jnp.asarray(bad) if isinstance(bad, np.ndarray) else bad)


@pytest.mark.parametrize("case,error,match", [
    ("dim", ValueError, r"VAE tokens must be \[B, k, 8\]; got \(2, 32, 16\)"),
    ("ids", ValueError, r"VAE tokens must be \[B, k, 8\]; got \(2, 32\)"),
    ("int", TypeError, r"continuous and must be float; got int32"),
    ("too_many", ValueError, r"between 1 and 32 tokens can be decoded; got 33"),
    ("zero", ValueError, r"got 0"),
    ("nan", ValueError, r"NaN or Inf"),
])
def test_decode_refuses_bad_vae_tokens(vae, case, error, match):
  z = RNG.standard_normal((2, 32, 8)).astype(np.float32)
  bad = {"dim": np.concatenate([z, z], -1), "ids": np.zeros((2, 32), np.int32),
         "int": z.astype(np.int32), "too_many": np.concatenate([z, z[:, :1]], 1),
         "zero": z[:, :0], "nan": np.where(z > 2, np.nan, z)}[case]
  with pytest.raises(error, match=match):
    vae.decode(jnp.asarray(bad))


@pytest.mark.parametrize("case,error,match", [
    ("length", ValueError, r"ids must be \[B, 16\] \(a 4x4 grid\); got \(2, 15\)"),
    ("grid", ValueError, r"ids must be \[B, 16\]"),
    ("float", TypeError, r"must be integers"),
    ("range", ValueError, r"must be in \[0, 1024\); got \[\d+, 5000\]"),
])
def test_maskgit_decode_refuses_bad_ids(maskgit, case, error, match):
  ids = RNG.integers(0, 1024, size=(2, 16)).astype(np.int32)
  bad = {"length": ids[:, :15], "grid": ids.reshape(2, 4, 4), "float": ids.astype(np.float32),
         "range": np.where(ids == ids.max(), 5000, ids)}[case]
  with pytest.raises(error, match=match):
    maskgit.decode(jnp.asarray(bad))


def test_fewer_tokens_decode(vq, vae):
  ids = vq.encode(jnp.asarray(IMAGES))
  for k in (1, 5, 32):
    out = np.asarray(vq.decode(ids[:, :k]))
    assert out.shape == (2, 64, 64, 3) and out.min() >= 0 and out.max() <= 1
  assert not np.allclose(vq.decode(ids[:, :5]), vq.decode(ids))  # the dropped tokens count
  z = vae.encode(jnp.asarray(IMAGES))
  assert z.shape == (2, 32, 8) and z.dtype == jnp.float32
  assert vae.decode(z[:, :5]).shape == (2, 64, 64, 3)


def test_empty_batch(vq, vae, maskgit):
  empty = jnp.zeros((0, 64, 64, 3))
  assert vq.encode(empty).shape == (0, 32)
  assert vae.encode(empty).shape == (0, 32, 8)
  assert maskgit.encode(empty).shape == (0, 16)
  assert vq.decode(jnp.zeros((0, 5), jnp.int32)).shape == (0, 64, 64, 3)
  assert maskgit.decode(jnp.zeros((0, 16), jnp.int32)).shape == (0, 64, 64, 3)


def test_checks_work_under_jit(vq, maskgit):
  """Value checks need concrete arrays; traced calls keep the shape/dtype checks only."""
  x = jnp.asarray(IMAGES)
  for model in (vq, maskgit):
    ids = nnx.jit(lambda m, x: m.encode(x))(model, x)
    np.testing.assert_array_equal(ids, model.encode(x))
    out = nnx.jit(lambda m, i: m.decode(i))(model, ids)
    np.testing.assert_array_equal(out, model.decode(ids))
    with pytest.raises(TypeError, match="integers"):
      nnx.jit(lambda m, i: m.decode(i))(model, ids.astype(jnp.float32))
