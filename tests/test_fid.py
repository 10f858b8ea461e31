"""FID statistics and distance, and the Inception Score, against pytorch-fid, torch-fidelity and
TiTok's evaluator (goldens: tests/golden/make_fid_golden.py, inputs: tests/golden/eval_seeding.py).
"""
import pathlib

import numpy as np
import pytest

from tests.golden import eval_seeding
from zoo.evals import fid
from zoo.evals.inception_score import InceptionScore, inception_score

GOLDEN = np.load(pathlib.Path(__file__).parent / "golden" / "fid_is.npz")
CASES = ("random", "same", "rank_deficient", "singular")


def case(name):
  return [GOLDEN[f"{name}_{k}"] for k in ("mu1", "sigma1", "mu2", "sigma2")]


@pytest.mark.parametrize("name", CASES)
def test_frechet_distance_matches_pytorch_fid(name):
  want = float(GOLDEN[f"{name}_fid"])
  if name == "singular":
    with pytest.warns(UserWarning, match="adding 1e-06"):
      got = fid.frechet_distance(*case(name))
  else:
    got = fid.frechet_distance(*case(name))
  assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (got, want)


def test_frechet_distance_complex_root_is_an_error():
  assert np.isnan(GOLDEN["imaginary_fid"])  # pytorch-fid raised too
  with pytest.raises(ValueError, match="imaginary component of up to 1"):
    fid.frechet_distance(*case("imaginary"))


def test_frechet_distance_mismatched_dims():
  mu, sigma = np.zeros(4), np.eye(4)
  with pytest.raises(ValueError, match="different lengths"):
    fid.frechet_distance(mu, sigma, np.zeros(3), np.eye(3))
  with pytest.raises(ValueError, match="do not fit"):
    fid.frechet_distance(mu, sigma, mu, np.eye(3))


def test_streaming_statistics_equal_one_shot_numpy():
  x = eval_seeding.features(11, 200 * 256, 64)
  stats = fid.FeatureStatistics(64)
  sizes = []
  for batch in np.split(x, 200):
    stats.update(batch)
    sizes.append(sum(a.nbytes for a in vars(stats).values() if isinstance(a, np.ndarray)))
  assert len(set(sizes)) == 1 and sizes[0] == 8 * (64 * 64 + 2 * 64)  # no growth with N
  assert stats.count == len(x)
  x64 = x.astype(np.float64)
  np.testing.assert_allclose(stats.mean, x64.mean(0), rtol=1e-12)
  np.testing.assert_allclose(stats.covariance, np.cov(x64, rowvar=False), rtol=1e-9, atol=1e-13)


def test_streaming_rfid_matches_titok_evaluator():
  real, fake = fid.FeatureStatistics(32), fid.FeatureStatistics(32)
  for i in range(0, 1000, 100):  # TiTok's batches; the sums do not depend on them
    real.update(eval_seeding.features(5, 1000, 32)[i:i + 100])
    fake.update(eval_seeding.features(6, 1000, 32)[i:i + 100])
  got = fid.fid(real.result(), fake.result())
  np.testing.assert_allclose(got, GOLDEN["titok_rfid"], rtol=1e-9)


def test_statistics_bad_inputs():
  stats = fid.FeatureStatistics(8)
  with pytest.raises(ValueError, match="at least 1"):
    _ = stats.mean
  stats.update(np.ones((1, 8)))
  with pytest.raises(ValueError, match="at least 2 feature vectors.*got 1"):
    _ = stats.covariance
  bad = np.ones((3, 8))
  bad[1, 2] = np.nan
  with pytest.raises(ValueError, match=r"NaN or Inf \(rows \[1\]"):
    stats.update(bad)
  with pytest.raises(ValueError, match=r"\[batch, 8\]"):
    stats.update(np.ones((3, 7)))
  with pytest.raises(TypeError, match="real numbers"):
    stats.update(np.ones((3, 8), complex))
  assert stats.count == 1  # a rejected batch changes nothing


def test_save_and_load(tmp_path):
  stats = fid.FeatureStatistics(16)
  stats.update(eval_seeding.features(3, 50, 16))
  stats.save(tmp_path / "s.npz")
  loaded = fid.load_statistics(tmp_path / "s.npz")
  np.testing.assert_array_equal(loaded.mu, stats.mean)
  np.testing.assert_array_equal(loaded.sigma, stats.covariance)
  assert loaded.count == 50 and fid.fid(loaded, stats.result()) == pytest.approx(0, abs=1e-9)


def test_load_adm_reference_batch(tmp_path):
  # The layout of ADM's VIRTUAL_imagenet256_labeled.npz: images plus pool and spatial statistics.
  rng = np.random.default_rng(0)
  mu, mu_s = rng.random(2048, np.float32), rng.random(2023, np.float32)
  np.savez(tmp_path / "ref.npz", arr_0=np.zeros((4, 256, 256, 3), np.uint8), mu=mu,
           sigma=np.eye(2048, dtype=np.float32), mu_s=mu_s, sigma_s=np.eye(2023))
  loaded = fid.load_statistics(tmp_path / "ref.npz")
  assert loaded.mu.dtype == np.float64 and loaded.sigma.shape == (2048, 2048)
  np.testing.assert_array_equal(loaded.mu, mu)
  assert loaded.count == 0


def test_load_bad_statistics_files(tmp_path):
  np.savez(tmp_path / "samples.npz", arr_0=np.zeros((2, 8, 8, 3), np.uint8))
  with pytest.raises(KeyError, match="lacks.*holds images"):
    fid.load_statistics(tmp_path / "samples.npz")
  np.savez(tmp_path / "shape.npz", mu=np.zeros(4), sigma=np.eye(3))
  with pytest.raises(ValueError, match="sigma"):
    fid.load_statistics(tmp_path / "shape.npz")
  np.savez(tmp_path / "nan.npz", mu=np.full(2, np.nan), sigma=np.eye(2))
  with pytest.raises(ValueError, match="NaN"):
    fid.load_statistics(tmp_path / "nan.npz")
  (tmp_path / "junk.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not an .npz"):
    fid.load_statistics(tmp_path / "junk.npz")
  with pytest.raises(FileNotFoundError):
    fid.load_statistics(tmp_path / "absent.npz")
  a = fid.GaussianStatistics(np.zeros(4), np.eye(4))
  b = fid.GaussianStatistics(np.zeros(8), np.eye(8))
  with pytest.raises(ValueError, match="different lengths"):
    fid.fid(a, b)


@pytest.mark.parametrize("shuffle", [True, False])
def test_inception_score_matches_torch_fidelity(shuffle):
  logits = eval_seeding.logits(7, 1003)
  mean, std = inception_score(logits, shuffle=shuffle)
  suffix = "" if shuffle else "_noshuffle"
  np.testing.assert_allclose(mean, GOLDEN[f"is_mean{suffix}"], rtol=1e-12)
  np.testing.assert_allclose(std, GOLDEN[f"is_std{suffix}"], rtol=1e-9)


def test_streaming_inception_score():
  logits = eval_seeding.logits(7, 1003)
  acc = InceptionScore()
  for i in range(0, 1000, 100):
    acc.update(logits[i:i + 100])
  np.testing.assert_allclose(acc.titok_inception_score(), GOLDEN["titok_is"], rtol=1e-12)
  acc.update(logits[1000:])
  result = acc.result()
  np.testing.assert_allclose(result["inception_score"], GOLDEN["is_mean"], rtol=1e-12)


def test_inception_score_bad_inputs():
  with pytest.raises(ValueError, match=r"\[N, 1008\]"):
    InceptionScore().update(np.zeros((2, 1000), np.float32))
  with pytest.raises(ValueError, match="NaN"):
    inception_score(np.full((20, 1008), np.nan, np.float32))
  with pytest.raises(TypeError, match="float"):
    inception_score(np.zeros((20, 1008), np.int32))
  with pytest.raises(ValueError, match="at least 10 images"):
    inception_score(np.zeros((9, 1008), np.float32))
  with pytest.raises(ValueError, match="no images"):
    InceptionScore().titok_inception_score()


def test_merged_shares_equal_one_accumulator():
  rng = np.random.default_rng(7)
  parts = [rng.normal(loc=i, size=(50 + 10 * i, 16)) for i in range(3)]
  FeatureStatistics = fid.FeatureStatistics
  whole = FeatureStatistics(16)
  for part in parts:
    whole.update(part)
  merged = FeatureStatistics(16)
  for part in parts:  # one accumulator per "process", merged through their states
    share = FeatureStatistics(16)
    share.update(part)
    merged.merge(FeatureStatistics.from_state(share.state()))
  all_features = np.concatenate(parts)
  assert merged.count == whole.count == len(all_features)
  np.testing.assert_allclose(merged.mean, all_features.mean(0), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(merged.covariance, np.cov(all_features, rowvar=False), rtol=1e-10,
                             atol=1e-12)
  with pytest.raises(ValueError, match="merge"):
    merged.merge(FeatureStatistics(8))
