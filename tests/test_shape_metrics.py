"""Chamfer distance, F-score and IoU against cases known in closed form."""
import numpy as np
import pytest

from zoo.evals.shape_metrics import chamfer_distance, f_score, nearest_distances, occupancy_iou

R = 0.5


def fibonacci_sphere(n: int, radius: float = R, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
  """n nearly evenly spread points on a sphere (equal-area in z)."""
  i = np.arange(n) + 0.5
  z = 1 - 2 * i / n
  phi = np.pi * (1 + 5 ** 0.5) * i
  ring = np.sqrt(1 - z ** 2)
  return radius * np.stack([ring * np.cos(phi), ring * np.sin(phi), z], -1) + np.array(centre)


def shifted_sphere_mean_distance(r, s):
  """E over a sphere (radius r) of the distance to the same sphere shifted by s.

  A point at polar cosine u is sqrt(r^2 + s^2 - 2rsu) from the other centre, so its distance
  to that sphere is |sqrt(r^2 + s^2 - 2rsu) - r|, u uniform on [-1, 1]; integrated exactly.
  """
  a, b, u0 = r * r + s * s, 2 * r * s, s / (2 * r)
  g = lambda u: -(2 / (3 * b)) * (a - b * u) ** 1.5  # an antiderivative of sqrt(a - bu)
  above = g(u0) - g(-1) - r * (u0 + 1)  # u < u0: outside the other sphere
  below = r * (1 - u0) - (g(1) - g(u0))
  return (above + below) / 2


def shifted_sphere_f_score(r, s, tau):
  """The fraction of u in [-1, 1] with |sqrt(r^2 + s^2 - 2rsu) - r| < tau (P = R = F)."""
  lo = (r * r + s * s - (r + tau) ** 2) / (2 * r * s)
  hi = (r * r + s * s - max(r - tau, 0) ** 2) / (2 * r * s)
  return (min(hi, 1) - max(lo, -1)) / 2


def test_a_sphere_against_itself():
  a = fibonacci_sphere(5_000)
  assert chamfer_distance(a, a) == 0.0 and f_score(a, a) == 1.0


def test_a_sphere_against_a_shifted_sphere():
  s, tau = 0.1, 0.02
  # Dense samplings both ways: either direction of the Chamfer sum queries one set's points
  # against the other's, and a sparse target would add its spacing to every distance.
  a, b = fibonacci_sphere(100_000), fibonacci_sphere(100_000, centre=(s, 0, 0))
  want = shifted_sphere_mean_distance(R, s)  # 0.05 for r 0.5, s 0.1
  assert nearest_distances(a[::25], b).mean() == pytest.approx(want, rel=0.01)
  assert chamfer_distance(a, b) == pytest.approx(2 * want, rel=0.01)
  assert f_score(a, b, tau) == pytest.approx(shifted_sphere_f_score(R, s, tau), abs=0.005)


def test_concentric_spheres_and_the_threshold():
  a, b = fibonacci_sphere(3_000, 0.5), fibonacci_sphere(200_000, 0.45)
  assert nearest_distances(a, b).mean() == pytest.approx(0.05, rel=0.005)
  assert f_score(a, b, tau=0.06) == 1.0 and f_score(a, b, tau=0.04) == 0.0


def test_iou():
  logits = np.array([1.0, -1.0, 0.0, -2.0, 3.0])
  labels = np.array([1, 1, 0, 0, 1])
  assert occupancy_iou(logits, labels) == pytest.approx(2 / 4)
  assert occupancy_iou(-np.ones(3), np.zeros(3)) == 1.0


def test_bad_point_sets():
  a = fibonacci_sphere(10)
  with pytest.raises(ValueError, match=r"\[N, 3\]"):
    chamfer_distance(a[:, :2], a)
  with pytest.raises(ValueError, match="empty"):
    f_score(np.zeros((0, 3)), a)
  with pytest.raises(ValueError, match="NaN"):
    chamfer_distance(a, np.full((4, 3), np.nan))
  with pytest.raises(ValueError, match="tau"):
    f_score(a, a, tau=0)
  with pytest.raises(ValueError, match="shape"):
    occupancy_iou(np.zeros(3), np.zeros(4))
