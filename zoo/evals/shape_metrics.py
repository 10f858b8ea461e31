"""Reconstruction metrics of 3D shapes, as 3DShape2VecSet's eval.py defines them.

Distances are plain (not squared) L2 nearest-neighbour distances between point sets, found
with a KD-tree. Chamfer = mean(a -> b) + mean(b -> a). F-score at tau: precision is the
fraction of `a` (the reconstruction) within tau of `b` (the reference), recall the fraction of
`b` within tau of `a`, F = 2PR / (P + R) (eval.py calls the two the other way round; F is the
same). IoU is over occupancy labels of query points, a logit >= 0 counting as inside.
"""
import numpy as np
from scipy.spatial import cKDTree

DEFAULT_TAU = 0.02  # 3DShape2VecSet's threshold on ShapeNet in [-1, 1]^3


def _point_set(x, name):
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[1] != 3:
    raise ValueError(f"{name} must be a point set [N, 3]; got shape {x.shape}")
  if not len(x):
    raise ValueError(f"{name} is empty (an empty reconstruction has no distances)")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} contains NaN or Inf")
  return x


def nearest_distances(a, b) -> np.ndarray:
  """For each point of `a` [N, 3], the distance to the nearest point of `b` [M, 3]: [N]."""
  a, b = _point_set(a, "a"), _point_set(b, "b")
  return cKDTree(b).query(a, workers=-1)[0]


def chamfer_distance(a, b) -> float:
  """mean nearest distance a -> b plus b -> a."""
  return float(nearest_distances(a, b).mean() + nearest_distances(b, a).mean())


def f_score(a, b, tau: float = DEFAULT_TAU) -> float:
  """Harmonic mean of the fractions of a within tau of b and of b within tau of a."""
  if tau <= 0:
    raise ValueError(f"tau must be positive; got {tau}")
  precision = float(np.mean(nearest_distances(a, b) < tau))
  recall = float(np.mean(nearest_distances(b, a) < tau))
  return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def occupancy_iou(logits, labels) -> float:
  """|predicted inside and labelled inside| / |either|, over one shape's query points."""
  logits, labels = np.asarray(logits), np.asarray(labels)
  if logits.shape != labels.shape:
    raise ValueError(f"logits {logits.shape} and labels {labels.shape} differ in shape")
  pred, truth = logits >= 0, labels > 0.5
  union = np.logical_or(pred, truth).sum()
  return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)
