"""Inception Score from the FID Inception's 1008-way `logits_unbiased` (fc without its bias).

Two rules are in use and give different numbers for the same images:

torch-fidelity (`isc_features_to_metric`, i.e. `calculate_metrics(isc=True)`), `inception_score`:
  shuffle the N images with numpy.random.RandomState(2020).permutation(N) (default on), cast to
  float64, softmax over all 1008 logits; split into 10 sequential chunks [i*N//10, (i+1)*N//10);
  per chunk exp(mean over images of KL(p || mean p of the chunk)); report the mean and the
  population std (numpy.std) of the 10 scores.
TiTok's evaluator (evaluator/evaluator.py, the IS its papers report), `titok_inception_score`:
  one split over all images, no shuffle, float64 throughout (its copy of torch-fidelity's
  extractor runs and returns float64): sums over images of p and of p * log(p + 1e-16), then
  IS = exp(sum(sum_plogp - sum_p * log(sum_p / N + 1e-16)) / N). This one streams.
ADM's TF evaluator (gFID; not implemented here) is a third: splits of 5000 images in order,
float32, mean of the split scores only.

The split of an image under torch-fidelity's rule depends on a permutation of all N, so its
score cannot be accumulated before N is known: `InceptionScore` keeps every image's logits as
float32 (what torch-fidelity's extractor outputs, so nothing is lost), 4 KiB per image, about
200 MB for 50,000 images, which a host holds easily; it accumulates TiTok's sums as it goes.
"""
import numpy as np

IS_CLASSES = 1008
TITOK_EPS = 1e-16
TORCH_FIDELITY_SPLITS = 10
TORCH_FIDELITY_SEED = 2020


def _check_logits(logits, classes=None) -> np.ndarray:
  x = np.asarray(logits)
  if x.ndim != 2 or (classes is not None and x.shape[1] != classes):
    want = f"[N, {classes}]" if classes is not None else "[N, classes]"
    raise ValueError(f"Inception Score takes logits {want}, got shape {x.shape}")
  if not np.issubdtype(x.dtype, np.floating):
    raise TypeError(f"logits must be float, got dtype {x.dtype}")
  if not np.all(np.isfinite(x)):
    raise ValueError("logits contain NaN or Inf")
  return x


def _log_softmax(x):
  shifted = x - x.max(axis=1, keepdims=True)
  return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def inception_score(logits, splits: int = TORCH_FIDELITY_SPLITS, shuffle: bool = True,
                    seed: int = TORCH_FIDELITY_SEED) -> tuple[float, float]:
  """(mean, std) over splits, torch-fidelity's rule (see the module doc)."""
  x = _check_logits(logits)
  n = len(x)
  if splits < 1 or n < splits:
    raise ValueError(f"Inception Score over {splits} splits needs at least {splits} images, "
                     f"got {n}")
  if shuffle:
    x = x[np.random.RandomState(seed).permutation(n)]
  log_p = _log_softmax(x.astype(np.float64))
  p = np.exp(log_p)
  scores = []
  for i in range(splits):
    chunk = slice(i * n // splits, (i + 1) * n // splits)
    q = p[chunk].mean(axis=0, keepdims=True)
    kl = np.sum(p[chunk] * (log_p[chunk] - np.log(q)), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


class InceptionScore:
  """`update(logits [B, 1008])` for every batch; then `result()` or `titok_inception_score()`."""

  def __init__(self, classes: int = IS_CLASSES):
    self.classes = classes
    self.count = 0
    self._logits: list[np.ndarray] = []
    self._prob_sum = np.zeros(classes, np.float64)
    self._plogp_sum = np.zeros(classes, np.float64)

  def update(self, logits) -> None:
    x = _check_logits(logits, self.classes)
    self._logits.append(x.astype(np.float32))
    p = np.exp(_log_softmax(x.astype(np.float64)))
    self._prob_sum += p.sum(axis=0)
    self._plogp_sum += (p * np.log(p + TITOK_EPS)).sum(axis=0)
    self.count += len(x)

  def titok_inception_score(self) -> float:
    if self.count < 1:
      raise ValueError("Inception Score of no images")
    excess = self._prob_sum * np.log(self._prob_sum / self.count + TITOK_EPS)
    return float(np.exp(np.sum(self._plogp_sum - excess) / self.count))

  def result(self) -> dict:
    """{"inception_score", "inception_score_std"} (torch-fidelity) and "inception_score_titok"."""
    mean, std = inception_score(np.concatenate(self._logits) if self._logits else
                                np.zeros((0, self.classes), np.float32))
    return {"inception_score": mean, "inception_score_std": std,
            "inception_score_titok": self.titok_inception_score()}
