"""GPSToken's entropy-driven initialisation against golden outputs of the official function."""
import numpy as np
import pytest

from models.image import gpstoken_init
import pathlib

GOLDEN = np.load(pathlib.Path(__file__).parent / "golden" / "gpstoken_init.npz")
CASES = sorted({(k.split("/")[0], int(k.split("/")[1])) for k in GOLDEN if k.count("/") == 2})


def official_grey(image):
  img = (image / 127.5 - 1.0).astype(np.float32)  # the official loader's [-1, 1] image
  return 0.299 * img[:, :, 0] + 0.587 * img[:, :, 1] + 0.114 * img[:, :, 2]


@pytest.mark.parametrize("name,count", CASES)
def test_same_regions_and_gaussians_as_official(name, count):
  gaussians, rois = gpstoken_init.initial_gaussians(official_grey(GOLDEN[f"{name}/image"]), count)
  np.testing.assert_array_equal(gaussians, GOLDEN[f"{name}/{count}/gaussians"])
  np.testing.assert_array_equal(rois, GOLDEN[f"{name}/{count}/rois"])


def test_histograms_equal_numpys():
  values = np.random.default_rng(0).uniform(-6, 6, (3, 4096))
  values[0, :5] = np.linspace(-5.5, 5.5, 513)[[0, 1, 256, 511, 512]]  # exact bin edges
  want = [np.histogram(v, bins=512, range=(-5.5, 5.5))[0] for v in values]
  np.testing.assert_array_equal(gpstoken_init._histograms(values), np.stack(want))


def test_tiles_are_initialised_separately():
  image = GOLDEN["astronaut/image"].astype(np.float32) / 255.0
  big = np.concatenate([np.concatenate([image, image[:, ::-1]], 1)] * 2, 0)  # 512 x 512
  gaussians, rois = gpstoken_init.initial_gaussians_for_image(big, 64)
  assert gaussians.shape == (256, 5) and rois.shape == (256, 4)
  tile, _ = gpstoken_init.initial_gaussians(gpstoken_init.grey_image(image), 64)
  np.testing.assert_array_equal(gaussians[:64], tile)
  np.testing.assert_array_equal(gaussians[128:192], tile)


@pytest.mark.parametrize("grey,message", [
    (np.zeros((4, 4, 3), np.float32), "2-D tile"),
    (np.zeros((16, 16), np.float64), "float32"),
    (np.full((16, 16), np.nan, np.float32), "NaN"),
])
def test_bad_tiles_are_named(grey, message):
  with pytest.raises((ValueError, TypeError), match=message):
    gpstoken_init.initial_gaussians(grey, 4)


def test_too_many_gaussians_for_the_tile_is_an_error():
  with pytest.raises(ValueError, match="fewer than"):
    gpstoken_init.initial_gaussians(np.zeros((16, 16), np.float32), 8)


def test_images_not_multiple_of_the_tile_are_refused():
  with pytest.raises(ValueError, match="multiples of 256"):
    gpstoken_init.initial_gaussians_for_image(np.zeros((300, 256, 3), np.float32), 64)
