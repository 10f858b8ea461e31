"""Reference statistics over a dataset with a stand-in feature network (no Inception needed)."""
import numpy as np
import pytest

from zoo.data.sample_photos import SamplePhotos
from zoo.evals import fid, protocols, reference_stats


def color_features(images):
  """A cheap [B, 6] stand-in for Inception: per-channel mean and std of uint8 images."""
  assert images.dtype == np.uint8
  x = images.astype(np.float64) / 255
  return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


@pytest.mark.parametrize("protocol", ["titok", "adm"])
def test_reference_statistics_of_builtin_photos(tmp_path, protocol):
  stats = reference_stats.write_reference_statistics(
      tmp_path / "ref.npz", data="builtin:photos", features_fn=color_features, protocol=protocol,
      image_size=64, batch_size=5, num_examples=12)
  source = SamplePhotos("eval")
  crops = np.stack([protocols.preprocess(source[i], protocol, 64) for i in range(12)])
  want = color_features(crops)
  loaded = fid.load_statistics(tmp_path / "ref.npz")
  assert loaded.count == stats.count == 12
  np.testing.assert_allclose(loaded.mu, want.mean(0), rtol=1e-12)
  np.testing.assert_allclose(loaded.sigma, np.cov(want, rowvar=False), rtol=1e-9, atol=1e-15)


def test_masked_float_batches():
  # zoo.data's eval batches: float images with padding marked in "mask".
  images = np.random.default_rng(0).random((4, 8, 8, 3)).astype(np.float32)
  batches = [{"image": images[:2], "mask": np.array([True, True])},
             {"image": np.concatenate([images[2:], np.zeros_like(images[:2])]),
              "mask": np.array([True, True, False, False])}]
  feats = lambda x: x.reshape(len(x), -1)[:, :5]
  stats = reference_stats.compute_reference_statistics(batches, feats)
  assert stats.count == 4
  np.testing.assert_allclose(stats.mean, feats(images).mean(0), rtol=1e-6)


def test_reference_statistics_errors():
  with pytest.raises(ValueError, match="no images"):
    reference_stats.compute_reference_statistics([], color_features)
  with pytest.raises(ValueError, match=r"must give \[2, D\]"):
    reference_stats.compute_reference_statistics([np.zeros((2, 4, 4, 3), np.uint8)],
                                                 lambda x: np.zeros((3, 4)))
  with pytest.raises(SystemExit):
    reference_stats.main(["--data", "builtin:photos", "--out", "x.npz", "--protocol", "clean"])
