"""Reconstruction metrics against scikit-image on real photos, and the host-side helpers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.quantizers.vq import codebook_stats
from zoo.evals import (CodebookUsage, MeanMetrics, codebook_stats_from_counts, psnr,
                       save_recon_grid, ssim)

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "cat")


def distort(x, kind, rng):
  if kind == "noise":
    y = x + rng.normal(0.0, 0.05, x.shape)
  elif kind == "blur":
    y = ndi.gaussian_filter(x, (1.2, 1.2, 0))
  else:  # a codec-like mix: slight blur, 16 levels, faint noise.
    y = np.round(ndi.gaussian_filter(x, (0.7, 0.7, 0)) * 15) / 15 + rng.normal(0, 0.01, x.shape)
  return np.clip(y, 0.0, 1.0)


@pytest.fixture(scope="module")
def photo_pairs():
  """Six 200x264 crops of bundled photos (float64) and distorted copies; odd sizes on purpose."""
  rng = np.random.default_rng(0)
  clean = np.stack([getattr(skimage.data, n)()[:200, :264] / 255.0 for n in PHOTOS])
  kinds = ("noise", "blur", "mix")
  dist = np.stack([distort(x, kinds[i % 3], rng) for i, x in enumerate(clean)])
  return clean, dist


def sk_ssim(a, b):
  return structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                               sigma=1.5, use_sample_covariance=False)


def test_psnr_matches_skimage(photo_pairs):
  clean, dist = photo_pairs
  want = [peak_signal_noise_ratio(a, b, data_range=1) for a, b in zip(clean, dist)]
  got = psnr(clean.astype(np.float32), dist.astype(np.float32))
  assert got.shape == (len(PHOTOS),)
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_ssim_matches_skimage(photo_pairs):
  clean, dist = photo_pairs
  want = np.array([sk_ssim(a, b) for a, b in zip(clean, dist)])
  assert want.min() < 0.6 and want.max() > 0.8  # the distortions span a useful range.
  got = ssim(clean.astype(np.float32), dist.astype(np.float32))
  assert got.shape == (len(PHOTOS),)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)  # measured ~2e-7 in float32.


def test_ssim_equals_skimage_in_float64(photo_pairs):
  # Same pixels, same window: in float64 the two agree to rounding, so the border crop and
  # the filter are identical, not just close.
  clean, dist = photo_pairs
  want = np.array([sk_ssim(a, b) for a, b in zip(clean[:2], dist[:2])])
  with jax.enable_x64(True):
    got = ssim(clean[:2], dist[:2])
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)


def test_ssim_grayscale_matches_skimage():
  rng = np.random.default_rng(1)
  a = skimage.data.camera()[100:160, 200:297] / 255.0
  b = distort(a[..., None], "noise", rng)[..., 0]
  want = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False)
  got = ssim(a[None, ..., None].astype(np.float32), b[None, ..., None].astype(np.float32))
  np.testing.assert_allclose(got, [want], atol=1e-5, rtol=0)


def test_identical_images_and_jit(photo_pairs):
  clean, dist = photo_pairs
  x = jnp.asarray(clean[:2], jnp.float32)
  np.testing.assert_allclose(ssim(x, x), [1.0, 1.0], atol=1e-6)
  assert np.all(np.isinf(psnr(x, x)))
  y = jnp.asarray(dist[:2], jnp.float32)
  both = jax.jit(lambda a, b: (psnr(a, b), ssim(a, b)))(x, y)
  np.testing.assert_allclose(both[0], psnr(x, y), rtol=1e-6)
  np.testing.assert_allclose(both[1], ssim(x, y), rtol=1e-6)


def test_bfloat16_inputs_compute_in_float32(photo_pairs):
  clean, dist = photo_pairs
  got = ssim(jnp.asarray(clean[:1], jnp.bfloat16), jnp.asarray(dist[:1], jnp.bfloat16))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, [sk_ssim(clean[0], dist[0])], atol=1e-2)


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_bad_inputs_raise_clear_errors(fn):
  x = np.full((2, 16, 16, 3), 0.5, np.float32)
  with pytest.raises(ValueError, match="same shape"):
    fn(x, x[:1])
  with pytest.raises(ValueError, match="NHWC"):
    fn(x[0], x[0])
  with pytest.raises(TypeError, match="float"):
    fn((x * 255).astype(np.uint8), x)
  bad = x.copy()
  bad[1, 3, 4, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    fn(x, bad)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    fn(x * 255, x)
  # Under jit the values are not known: shape checks still run, value checks are skipped.
  with pytest.raises(ValueError, match="same shape"):
    jax.jit(fn)(x, x[:1])
  assert np.all(np.isnan(jax.jit(fn)(x, bad)[1:]))


def test_ssim_rejects_images_smaller_than_window():
  x = np.zeros((1, 10, 32, 3), np.float32)
  with pytest.raises(ValueError, match="at least 11x11"):
    ssim(x, x)


def test_codebook_usage_streams_like_one_batch():
  rng = np.random.default_rng(0)
  size = 64
  # Skewed, with codes 48.. never used, over three batches of different shapes.
  batches = [rng.integers(0, 48, (4, 32)) ** 2 % 48, rng.integers(0, 20, (3, 32)),
             rng.integers(0, 48, (5, 8, 2))]
  usage = CodebookUsage(size)
  for b in batches:
    usage.update(jnp.asarray(b, jnp.int32) if b.ndim == 2 else b)
  assert usage.counts.dtype == np.int64
  assert usage.counts.sum() == sum(b.size for b in batches)
  all_ids = np.concatenate([b.reshape(-1) for b in batches])
  got = usage.result()
  want = {k: float(v) for k, v in codebook_stats(jnp.asarray(all_ids, jnp.int32), size).items()}
  assert got.keys() == want.keys()
  for k in got:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, err_msg=k)
  assert got["codebook_usage"] == len(np.unique(all_ids)) / size


def test_codebook_stats_known_values():
  uniform = codebook_stats_from_counts(np.full(16, 5))
  assert uniform == {"codebook_usage": 1.0, "codebook_entropy_bits": 4.0,
                     "codebook_perplexity": 16.0}
  half = codebook_stats_from_counts([3, 0, 3, 0])
  assert half == {"codebook_usage": 0.5, "codebook_entropy_bits": 1.0,
                  "codebook_perplexity": 2.0}
  empty = CodebookUsage(8).result()
  assert empty == {"codebook_usage": 0.0, "codebook_entropy_bits": 0.0,
                   "codebook_perplexity": 1.0}


def test_codebook_usage_rejects_bad_ids():
  usage = CodebookUsage(8)
  with pytest.raises(ValueError, match=r"\[0, 8\)"):
    usage.update(np.array([0, 8]))
  with pytest.raises(ValueError, match=r"\[0, 8\)"):
    usage.update(np.array([-1, 2]))
  with pytest.raises(TypeError, match="integers"):
    usage.update(np.array([0.0, 1.0]))
  assert usage.counts.sum() == 0  # a rejected batch adds nothing.
  usage.update(np.zeros((0,), np.int32))
  usage.update([1, 1, 2])
  usage.reset()
  assert usage.counts.sum() == 0


def test_mean_metrics_accumulates_in_float64():
  m = MeanMetrics()
  m.update(psnr=np.array([20.0, 30.0], np.float32), ssim=jnp.array([0.5, 0.7]))
  m.update({"psnr": [40.0]}, loss=1.5)  # a mapping and keywords; a scalar is one example.
  assert m.counts == {"psnr": 3, "ssim": 2, "loss": 1}
  assert m.result() == pytest.approx({"psnr": 30.0, "ssim": 0.6, "loss": 1.5})
  big = MeanMetrics()
  for _ in range(1000):
    big.update(x=np.full(1000, 0.1, np.float32))
  assert abs(big.result()["x"] - np.float64(np.float32(0.1))) < 1e-12
  m.reset()
  assert m.result() == {} and m.counts == {}


def test_save_recon_grid_layout_and_pixels(tmp_path):
  rng = np.random.default_rng(0)
  orig = rng.uniform(0, 1, (10, 6, 5, 3)).astype(np.float32)
  recon = rng.uniform(-0.2, 1.2, (10, 6, 5, 3)).astype(np.float32)  # overshoots get clipped.
  out = save_recon_grid(tmp_path / "sub" / "grid.png", orig, jnp.asarray(recon), max_images=4)
  assert out == str(tmp_path / "sub" / "grid.png")
  with Image.open(out) as im:
    assert im.format == "PNG" and im.mode == "RGB" and im.size == (4 * 5, 2 * 6)
    pixels = np.asarray(im)
  def u8(x):
    return np.round(np.clip(x.astype(np.float64), 0, 1) * 255).astype(np.uint8)
  for i in range(4):
    np.testing.assert_array_equal(pixels[:6, 5 * i:5 * (i + 1)], u8(orig[i]))
    np.testing.assert_array_equal(pixels[6:, 5 * i:5 * (i + 1)], u8(recon[i]))
  assert pixels[6:].min() == 0 and pixels[6:].max() == 255


def test_save_recon_grid_grayscale_fewer_than_max_and_errors(tmp_path):
  x = np.linspace(0, 1, 2 * 3 * 4).reshape(2, 3, 4, 1)
  out = save_recon_grid(str(tmp_path / "g.png"), x, 1.0 - x)
  with Image.open(out) as im:
    assert im.mode == "L" and im.size == (2 * 4, 2 * 3)
    pixels = np.asarray(im)
  np.testing.assert_array_equal(pixels[:3, :4], np.round(x[0, ..., 0] * 255).astype(np.uint8))
  with pytest.raises(ValueError, match=".png"):
    save_recon_grid(tmp_path / "g.jpg", x, x)
  with pytest.raises(ValueError, match="same shape"):
    save_recon_grid(tmp_path / "g.png", x, x[:1])
  with pytest.raises(TypeError, match="float"):
    save_recon_grid(tmp_path / "g.png", (x * 255).astype(np.uint8), x)
  with pytest.raises(ValueError, match="NaN"):
    save_recon_grid(tmp_path / "g.png", x, x * np.nan)
