"""Token editing helpers and the ellipse overlay picture."""
import numpy as np
import pytest
from PIL import Image

from models.image import gpstoken_edit as edit
from pallas_kernels.gaussian_splat import gaussian_splat
from zoo.evals.gaussian_overlay import overlay_ellipses, save_token_overlay


def tokens(b=2, t=6, c=3, seed=0):
  rng = np.random.default_rng(seed)
  geo = np.concatenate([rng.uniform(0.05, 0.3, (b, t, 2)), rng.uniform(-0.5, 0.5, (b, t, 1)),
                        rng.uniform(-0.8, 0.8, (b, t, 2))], -1)
  return np.concatenate([geo, rng.standard_normal((b, t, c))], -1).astype(np.float32)


def render(t, size=24):
  return np.asarray(gaussian_splat(t[..., :5], t[..., 5:], size, size, dmax=3.0))


def test_drop_is_rendering_without_the_token():
  t = tokens()
  dropped = edit.drop(t, [1, 4])
  keep = [0, 2, 3, 5]
  np.testing.assert_allclose(render(np.asarray(dropped)), render(t[:, keep]), atol=1e-5)
  mask = np.zeros((2, 6), bool)
  mask[0, 2] = True  # one image only
  out = np.asarray(edit.drop(t, mask))
  np.testing.assert_array_equal(out[1], t[1])
  assert not out[0, 2, 5:].any() and (out[0, 2, :5] == t[0, 2, :5]).all()


def test_move_and_scale_change_only_the_selected_geometry():
  t = tokens()
  moved = np.asarray(edit.move(t, [3], 0.1, -0.2))
  np.testing.assert_allclose(moved[:, 3, 3:5] - t[:, 3, 3:5], [[0.1, -0.2]] * 2, atol=1e-6)
  np.testing.assert_array_equal(np.delete(moved, 3, 1), np.delete(t, 3, 1))
  scaled = np.asarray(edit.scale(t, np.arange(6) % 2 == 0, 2.0))
  np.testing.assert_allclose(scaled[:, ::2, :2], 2 * t[:, ::2, :2])
  np.testing.assert_array_equal(scaled[:, 1::2], t[:, 1::2])
  # Moving a Gaussian by whole pixels shifts its render by as many pixels.
  one = tokens(b=1, t=1)
  one[0, 0, 3:5] = 0.0
  step = 2.0 / 23  # one pixel of a 24 x 24 grid
  shifted = render(np.asarray(edit.move(one, [0], 2 * step, 0.0)))
  np.testing.assert_allclose(shifted[0, :, 6:], render(one)[0, :, 4:-2], atol=1e-5)


def test_bad_selections_and_factors():
  t = tokens()
  with pytest.raises(IndexError, match="token indices"):
    edit.drop(t, [6])
  with pytest.raises(ValueError, match="mask must be"):
    edit.drop(t, np.ones(5, bool))
  with pytest.raises(TypeError, match="bool mask or integer"):
    edit.drop(t, [0.5])
  with pytest.raises(ValueError, match="positive"):
    edit.scale(t, [0], 0.0)
  with pytest.raises(ValueError, match=r"\[B, T, 5 \+ C\]"):
    edit.move(t[0], [0], 0.1, 0.1)


def test_ellipse_points_are_the_one_sigma_contour():
  t = np.zeros((1, 1, 6), np.float32)
  t[0, 0, :5] = (0.2, 0.1, 0.0, 0.0, 0.5)  # axis-aligned, centred at x 0, y 0.5
  pts = edit.ellipse_points(t, 101, 201, num=4)[0, 0]  # angles 0, 90, 180, 270 degrees
  cx, cy = 100.0, 0.75 * 100
  np.testing.assert_allclose(pts, [[cx + 20, cy], [cx, cy + 5], [cx - 20, cy], [cx, cy - 5]],
                             atol=1e-9)
  # With correlation every point still has Mahalanobis distance 1.
  t[0, 0, 2] = 0.6
  p = edit.ellipse_points(t, 101, 201)[0, 0]
  d = np.stack([p[:, 0] / 100 - 1.0, p[:, 1] / 50 - 1.0 - 0.5], -1)
  cov = np.array([[0.04, 0.6 * 0.02], [0.6 * 0.02, 0.01]])
  np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d), 1.0, rtol=1e-6)


def test_overlay_picture(tmp_path):
  image = np.full((32, 32, 3), 0.5, np.float32)
  t = tokens(b=1, t=3)[0]
  out = overlay_ellipses(image, t)
  assert out.shape == (32, 32, 3) and out.dtype == np.uint8
  assert (out != 128).any(axis=-1).sum() > 20  # ellipses were drawn
  path = save_token_overlay(tmp_path / "o.png", image[None], t[None], image[None])
  assert Image.open(path).size == (64, 32)
  with pytest.raises(ValueError, match="PNG"):
    save_token_overlay(tmp_path / "o.jpg", image[None], t[None])
  with pytest.raises(ValueError, match="one image"):
    overlay_ellipses(image, t[None])
