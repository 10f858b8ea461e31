"""OmniTokenizer's API, layouts, bad inputs, codebook training rule and memory."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.layers.omnitokenizer_blocks import alibi_slopes, relative_offsets, rope_angles
from models.quantizers.restart_ema_vq import RestartEMACodebook
from zoo.evals.memory import model_memory


@pytest.fixture(scope="module")
def tiny():
  return zoo.create("omnitokenizer_tiny")


def _video(t=9, h=32, w=32, seed=0):
  return jax.random.uniform(jax.random.key(seed), (2, t, h, w, 3))


def test_images_and_videos_share_one_tokenizer(tiny):
  video = _video()
  ids = tiny.encode(video)
  assert ids.shape == (2, 3, 8, 8) and ids.dtype == jnp.int32
  assert tiny.decode(ids).shape == video.shape
  image_ids = tiny.encode(video[:, 0])
  assert image_ids.shape == (2, 8, 8)
  image = tiny.decode(image_ids)
  assert image.shape == (2, 32, 32, 3) and float(image.min()) >= 0 and float(image.max()) <= 1
  # An image is a one-frame video.
  np.testing.assert_array_equal(tiny.encode(video[:, :1])[:, 0], image_ids)


def test_non_square_and_other_sizes(tiny):
  video = _video(h=32, w=48)
  ids = tiny.encode(video)
  assert ids.shape == (2, 3, 8, 12)
  assert tiny.decode(ids).shape == video.shape
  out = tiny(_video(t=5, h=48, w=16), train=False)
  assert out["recon"].shape == (2, 5, 48, 16, 3)


def test_positions_follow_rows_and_columns():
  # A square grid gives the official angles (x = n % side, y = n // side).
  side, d = 4, 8
  angles = rope_angles(d, side, side)
  n = np.arange(side * side)
  freqs = 1.0 / 10000 ** (np.arange(0, d, 4)[:d // 4] / d)
  np.testing.assert_allclose(angles[:, 0::2], np.outer(n % side, freqs), rtol=1e-6)
  np.testing.assert_allclose(angles[:, 1::2], np.outer(n // side, freqs), rtol=1e-6)
  # Non-square: the true column and row of each cell.
  rect = rope_angles(d, 2, 3)
  np.testing.assert_allclose(rect[:, 0], [0, 1, 2, 0, 1, 2])
  np.testing.assert_allclose(rect[:, 1], [0, 0, 0, 1, 1, 1])
  offsets, index = relative_offsets(2, 3)
  rows, cols = np.divmod(np.arange(6), 3)
  np.testing.assert_array_equal(offsets[index], np.stack(
      [rows[:, None] - rows[None], cols[:, None] - cols[None]], -1))
  np.testing.assert_allclose(alibi_slopes(8), 0.5 ** np.arange(1, 9))


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 8, 32, 32, 3), np.float32), "1 \\+ a multiple of 4"),
    (np.zeros((2, 9, 30, 32, 3), np.float32), "multiples of the patch 16"),
    (np.zeros((2, 32, 32), np.float32), "images \\[B, H, W, 3\\] or videos"),
    (np.zeros((2, 9, 32, 32, 3), np.uint8), "float in \\[0, 1\\]"),
    (np.full((2, 9, 32, 32, 3), 2.0, np.float32), "must be in \\[0, 1\\]"),
    (np.full((2, 9, 32, 32, 3), np.nan, np.float32), "NaN"),
])
def test_bad_inputs_are_named(tiny, x, match):
  with pytest.raises((ValueError, TypeError), match=match):
    tiny.encode(x)


def test_bad_tokens_are_named(tiny):
  with pytest.raises(ValueError, match="must be in \\[0, 256\\)"):
    tiny.decode(jnp.full((1, 8, 8), 256, jnp.int32))
  with pytest.raises(TypeError, match="integers"):
    tiny.decode(jnp.zeros((1, 8, 8), jnp.float32))
  with pytest.raises(ValueError, match="decodes ids"):
    tiny.decode(jnp.zeros((1, 64), jnp.int32))
  vae = zoo.create("omnitokenizer_tiny_vae")
  with pytest.raises(ValueError, match="latents"):
    vae.decode(jnp.zeros((1, 8, 8), jnp.int32))
  with pytest.raises(ValueError, match="VAE checkpoints"):
    tiny.posterior(_video())


def test_vae_posterior_and_training_forward():
  vae = zoo.create("omnitokenizer_tiny_vae")
  video = _video()
  mean = vae.encode(video)
  assert mean.shape == (2, 3, 8, 8, 8)
  # jitted encode against the eager posterior: the same sums, fused differently
  np.testing.assert_allclose(mean, vae.posterior(video).mode(), atol=2e-5)
  out = vae(video, train=True, rngs=nnx.Rngs(sample=0))
  assert out["kl"].shape == (2,) and out["recon"].shape == video.shape
  with pytest.raises(ValueError, match="rngs"):
    vae(video, train=True)


def test_codebook_training_rule():
  # The original's EMA step, in numpy, on a batch larger than the codebook.
  k, d = 8, 4
  book = RestartEMACodebook(k, d, rngs=nnx.Rngs(0))
  z = np.asarray(jax.random.normal(jax.random.key(1), (2, 16, d)))
  _, aux = book(z, train=True, rngs=nnx.Rngs(sample=3))
  flat = z.reshape(-1, d)
  init = np.asarray(book.z_avg[...] - 0.01 * (np.eye(k)[np.asarray(aux["ids"]).ravel()].T
                                              @ flat)) / 0.99
  # The initial codes are batch vectors, each code the nearest to the ids it was given.
  assert all(np.isclose(flat, c, atol=1e-5).all(1).any() for c in init)
  ids = np.argmin(((flat[:, None] - init[None]) ** 2).sum(-1), 1)
  np.testing.assert_array_equal(np.asarray(aux["ids"]).ravel(), ids)
  counts = np.bincount(ids, minlength=k)
  n_ema = 0.99 + 0.01 * counts
  np.testing.assert_allclose(book.N[...], n_ema, rtol=1e-6)
  z_avg = 0.99 * init + 0.01 * (np.eye(k)[ids].T @ flat)
  weights = (n_ema + 1e-7) / (n_ema.sum() + k * 1e-7) * n_ema.sum()
  np.testing.assert_allclose(book.embeddings[...], z_avg / weights[:, None], atol=1e-5)
  np.testing.assert_allclose(aux["commitment_loss"],
                             0.25 * np.mean((flat - init[ids]) ** 2), rtol=1e-5)
  # Evaluation searches the updated codes and changes nothing.
  before = np.asarray(book.embeddings[...])
  book(z, train=False)
  np.testing.assert_array_equal(book.embeddings[...], before)


def test_codebook_restarts_replace_unused_codes():
  k, d = 16, 4
  book = RestartEMACodebook(k, d, restarts=True, restart_threshold=1.0, rngs=nnx.Rngs(0))
  z = np.asarray(jax.random.normal(jax.random.key(1), (1, 4, d)))  # fewer vectors than codes
  book(z, train=True, rngs=nnx.Rngs(sample=0))
  used = np.asarray(book.N[...]) >= 1.0
  assert used.sum() <= 4 and (~used).any()
  # A restarted code is a (jittered) batch vector: within the 0.01/sqrt(d) noise of one.
  dist = np.abs(np.asarray(book.embeddings[...])[~used][:, None] - z.reshape(-1, d)[None])
  assert (dist.max(-1).min(-1) < 0.05).all()


def test_video_of_17_frames_at_256_fits_in_16_gib():
  # The released size, compiled for one 17x256^2 clip, encode + decode (no weights made).
  model = nnx.eval_shape(lambda: zoo.create("omnitokenizer_imagenet_k600"))
  clip = jax.ShapeDtypeStruct((1, 17, 256, 256, 3), jnp.float32)

  def roundtrip(m, video):
    codes, _ = m.codebook(m.code_inputs(m.encode_latents(video)), train=False)
    return m.decode_latents(codes)

  memory = model_memory(model, roundtrip, clip)
  assert memory["peak_bytes"] < 16 * 2 ** 30
  assert memory["argument_size_in_bytes"] > 200e6  # the weights are counted
