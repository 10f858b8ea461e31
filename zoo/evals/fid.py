"""Fréchet Inception Distance: streaming feature statistics and the distance itself.

Statistics are float64 numpy on the host, accumulated batch by batch as a sum [D] and a sum of
outer products [D, D], so 50,000 images of 2048 features take 32 MiB whatever their number (the
features themselves would take 800 MB). Both sums are taken about a fixed shift, the mean of
the first batch: the same result as plain sums in exact arithmetic, but the covariance no
longer loses digits to cancellation when the mean is large next to the spread. The covariance
has the N - 1 denominator of numpy.cov and pytorch-fid.

`frechet_distance` behaves as pytorch-fid's `calculate_frechet_distance` (and the ADM /
guided-diffusion evaluator's `FIDStatistics.frechet_distance`, which is the same code but for a
warning instead of a print): scipy.linalg.sqrtm of sigma1 @ sigma2; if that is not finite, once
more with eps * I added to both covariances; an imaginary part on the diagonal beyond atol 1e-3
is an error, a smaller one is dropped; d = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2)
- 2 tr(sqrtm). TiTok's evaluator (evaluator/evaluator.py) differs only where the product is
singular: it checks finiteness after dropping the imaginary part and then replaces tr(sqrtm) by
sum(sqrt(diag(sigma1) * diag(sigma2))) instead of retrying with eps.

Statistics files are .npz with `mu` [D] and `sigma` [D, D] (+ `count` when written here): the
format of pytorch-fid's `--save-stats` and of ADM's reference batches such as
VIRTUAL_imagenet256_labeled.npz, which also hold `mu_s`/`sigma_s` (spatial features, for sFID)
and `arr_0` (10,000 uint8 reference images); those are not read.
"""
import dataclasses
import os
import warnings
import zipfile

import numpy as np
from scipy import linalg

FID_EPS = 1e-6  # pytorch-fid's default offset for a singular product
IMAGINARY_ATOL = 1e-3


@dataclasses.dataclass(frozen=True)
class GaussianStatistics:
  """Mean [D] and covariance [D, D] of a feature set; count is 0 when a file did not say."""
  mu: np.ndarray
  sigma: np.ndarray
  count: int = 0

  def save(self, path) -> None:
    np.savez(path, mu=self.mu, sigma=self.sigma, count=np.int64(self.count))


class FeatureStatistics:
  """`update(features [B, D])` for every batch; then `mean`, `covariance`, `count`, `result()`."""

  def __init__(self, dim: int):
    if int(dim) != dim or dim < 1:
      raise ValueError(f"feature dimension must be a positive integer, got {dim!r}")
    self.dim = int(dim)
    self.count = 0
    self._shift = np.zeros(self.dim, np.float64)
    self._sum = np.zeros(self.dim, np.float64)
    self._outer = np.zeros((self.dim, self.dim), np.float64)

  def update(self, features) -> None:
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] != self.dim:
      raise ValueError(f"features must be [batch, {self.dim}], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
      raise TypeError(f"features must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
      bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
      raise ValueError(f"features contain NaN or Inf (rows {bad[:8].tolist()} of this batch); "
                       "the feature network's inputs or weights are broken")
    if not len(x):
      return
    if self.count == 0:
      self._shift = x.mean(axis=0)
    x = x - self._shift
    self._sum += x.sum(axis=0)
    self._outer += x.T @ x
    self.count += len(x)

  def merge(self, other: "FeatureStatistics") -> None:
    """Adds another accumulator's features (e.g. another process's share) to this one."""
    if other.dim != self.dim:
      raise ValueError(f"cannot merge {other.dim}-dim statistics into {self.dim}-dim ones")
    if other.count == 0:
      return
    if self.count == 0:
      self._shift = other._shift.copy()
    # Re-centre the other's sums on this shift: x - s = (x - s_o) + d with d = s_o - s.
    d = other._shift - self._shift
    self._sum += other._sum + other.count * d
    self._outer += (other._outer + np.outer(other._sum, d) + np.outer(d, other._sum)
                    + other.count * np.outer(d, d))
    self.count += other.count

  def state(self) -> dict:
    """The accumulators as arrays (to gather across processes); `from_state` inverts it."""
    return {"count": np.int64(self.count), "shift": self._shift, "sum": self._sum,
            "outer": self._outer}

  @classmethod
  def from_state(cls, state: dict) -> "FeatureStatistics":
    stats = cls(len(state["sum"]))
    stats.count = int(state["count"])
    stats._shift, stats._sum, stats._outer = (np.asarray(state[k], np.float64)
                                              for k in ("shift", "sum", "outer"))
    return stats

  @property
  def mean(self) -> np.ndarray:
    self._check_count(1)
    return self._shift + self._sum / self.count

  @property
  def covariance(self) -> np.ndarray:
    self._check_count(2)
    centred = self._outer - np.outer(self._sum, self._sum) / self.count
    return centred / (self.count - 1)

  def result(self) -> GaussianStatistics:
    return GaussianStatistics(self.mean, self.covariance, self.count)

  def save(self, path) -> None:
    self.result().save(path)

  def _check_count(self, need: int):
    if self.count < need:
      raise ValueError(f"FID statistics need at least {need} feature vectors "
                       f"({'a covariance' if need == 2 else 'a mean'}); got {self.count}")


def load_statistics(path) -> GaussianStatistics:
  """`mu` and `sigma` of an .npz written here, by pytorch-fid, or an ADM reference batch."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no FID statistics file at {path}")
  try:
    data = np.load(path, allow_pickle=False)
  except (ValueError, OSError, zipfile.BadZipFile) as e:
    raise ValueError(f"{path} is not an .npz of FID statistics ({e})") from e
  with data:
    missing = [k for k in ("mu", "sigma") if k not in data.files]
    if missing:
      hint = (" It holds images (arr_0) only, like an ADM sample batch: compute their "
              "statistics with zoo.evals.reference_stats." if "arr_0" in data.files else "")
      raise KeyError(f"{path} lacks {missing}; keys: {sorted(data.files)}.{hint}")
    mu, sigma = data["mu"], data["sigma"]
    count = int(data["count"]) if "count" in data.files else 0
  if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
    raise ValueError(f"{path}: mu must be [D] and sigma [D, D]; got {mu.shape} and {sigma.shape}")
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
    raise ValueError(f"{path}: mu or sigma contain NaN or Inf")
  return GaussianStatistics(mu.astype(np.float64), sigma.astype(np.float64), count)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = FID_EPS) -> float:
  """pytorch-fid's calculate_frechet_distance, with errors in place of its asserts."""
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape:
    raise ValueError(f"the two means have different lengths: {mu1.shape} and {mu2.shape} "
                     "(statistics of different feature layers?)")
  if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
    raise ValueError(f"covariances {sigma1.shape} and {sigma2.shape} do not fit means of "
                     f"length {mu1.size}")
  diff = mu1 - mu2
  with warnings.catch_warnings():  # a singular product is handled just below
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    warnings.warn(f"FID: sqrtm(sigma1 sigma2) is not finite (singular product); adding {eps} "
                  "to the diagonal of both covariances")
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_ATOL):
      raise ValueError(f"FID: sqrtm(sigma1 sigma2) has an imaginary component of up to "
                       f"{np.max(np.abs(covmean.imag)):.3g} (are both covariances "
                       "positive semi-definite?)")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(stats1: GaussianStatistics, stats2: GaussianStatistics) -> float:
  return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma)
