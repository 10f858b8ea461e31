"""GPSToken model pieces on a tiny config: shapes, tiling, RoIAlign, the tiled norm, bad inputs.

Parity with the official model is tests/test_gpstoken_parity.py."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.image.gpstoken import GPSToken, GPSTokenConfig, merge_tiles, split_tiles
from models.layers.roi_align import roi_align
from models.layers.tiled_norm import TiledGroupNorm, from_tiles, to_tiles

TINY = GPSTokenConfig(num_gaussians=16, feature_dim=4, width=64, depth=2, cond_channels=32,
                      render_size=16, tile_size=64, decoder_channels=32, decoder_res_blocks=1,
                      norm_groups=8)


@pytest.fixture(scope="module")
def model():
  return GPSToken(TINY, rngs=nnx.Rngs(0))


def photo(size):
  import skimage.data
  import skimage.transform
  return skimage.transform.resize(skimage.data.astronaut(), (size, size))[None].astype(np.float32)


def test_encode_decode_render_shapes(model):
  tokens = model.encode(photo(128))  # 2 x 2 tiles
  assert tokens.shape == (1, 64, 9)
  geo = np.asarray(tokens[..., :5])
  assert (geo[..., :2] > 0).all() and (np.abs(geo[..., 2:]) < 1).all()
  assert model.render(tokens).shape == (1, 32, 32, 4)
  for separately in (False, True):
    out = model.decode(tokens, separately=separately)
    assert out.shape == (1, 128, 128, 3) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_zero_deltas_keep_the_initial_gaussians(model):
  # to_gps[0] starts at zero, as in the official code: tokens start at the initialisation.
  gaussians, rois = model.initial_gaussians(photo(64))
  tokens = model.encode(photo(64), gaussians, rois)
  np.testing.assert_allclose(np.asarray(tokens[..., :5]), gaussians, atol=1e-6)


def test_merge_and_split_tiles_are_inverse():
  t = jnp.asarray(np.random.default_rng(0).uniform(0.1, 0.9, (8, 5, 7)), jnp.float32)
  merged = merge_tiles(t, 2)
  assert merged.shape == (2, 20, 7)
  np.testing.assert_allclose(split_tiles(merged, 2), t, atol=1e-6)
  # Tile (row 0, col 1) of image 0 lands in the right half, top half of the canvas.
  assert float(merged[0, 5:10, 3].min()) > 0 and float(merged[0, 5:10, 4].max()) < 0


def test_roi_align_whole_map_box_averages_bins():
  f = jnp.asarray(np.random.default_rng(1).standard_normal((1, 8, 8, 3)), jnp.float32)
  # aligned=True box [-0.5, 7.5] covers the map exactly; 2x2 bins of 4x4 pixels, 4 samples
  # per axis at pixel centres: each bin is the mean of its 16 pixels.
  out = roi_align(f, jnp.array([[[0.0, 0.0, 8.0, 8.0]]]), 2)
  want = np.asarray(f).reshape(2, 4, 2, 4, 3).mean(axis=(1, 3))
  np.testing.assert_allclose(np.asarray(out[0, 0]), want, rtol=1e-5, atol=1e-6)


def test_tiled_norm_with_one_tile_is_the_std_plus_eps_group_norm():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 4, 4, 16)), jnp.float32)
  norm = TiledGroupNorm(16, 4, rngs=nnx.Rngs(0))
  z = np.asarray(x).reshape(2, 4, 4, 4, 4)
  mean = z.mean(axis=(1, 2, 4), keepdims=True)
  std = z.std(axis=(1, 2, 4), keepdims=True)
  want = ((z - mean) / (std + 1e-6)).reshape(2, 4, 4, 16)
  np.testing.assert_allclose(np.asarray(norm(x)), want, rtol=1e-5, atol=1e-5)
  assert from_tiles(to_tiles(x, 2), 2).shape == x.shape


@pytest.mark.parametrize("images,message", [
    (np.zeros((1, 100, 64, 3), np.float32), "multiple of 64"),
    (np.zeros((1, 64, 64, 1), np.float32), "NHWC"),
    (np.full((1, 64, 64, 3), 2.0, np.float32), r"in \[0, 1\]"),
    (np.zeros((1, 64, 64, 3), np.uint8), "float"),
])
def test_bad_images_are_named(model, images, message):
  with pytest.raises((ValueError, TypeError), match=message):
    model.encode(images)


@pytest.mark.parametrize("column,value,message", [(0, -0.1, "sigma > 0"), (2, 1.0, r"\|rho\| < 1")])
def test_bad_tokens_are_named(model, column, value, message):
  tokens = np.full((1, 16, 9), 0.2, np.float32)
  tokens[0, 3, column] = value
  with pytest.raises(ValueError, match=message):
    model.decode(tokens)
