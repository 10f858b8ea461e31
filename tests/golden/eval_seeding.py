"""Feature and logit arrays for the FID / IS goldens, rebuilt identically by the golden script
(torch venv) and the tests (numpy only, so the script loads it by path).

Built from the raw bit stream of numpy's PCG64, which numpy keeps stable across versions (the
distributions of `Generator` are not promised to be), so the goldens need not store them.
"""
import numpy as np


def uniform(seed: int, shape) -> np.ndarray:
  """float64 in [0, 1) from PCG64's raw 64-bit outputs (top 53 bits)."""
  raw = np.random.PCG64(seed).random_raw(int(np.prod(shape)))
  return ((raw >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(shape)


def features(seed: int, n: int, dim: int) -> np.ndarray:
  """Non-negative, correlated, skewed features (like Inception pool features), float32."""
  u = uniform(seed, (n, dim))
  mix = uniform(seed + 1000, (dim, dim)) - 0.5
  return (np.square(u @ mix) + 0.3).astype(np.float32)


def logits(seed: int, n: int, classes: int = 1008) -> np.ndarray:
  """float32 [n, classes]: spread-out logits plus a confident class per image (cycling over 37)."""
  x = 4.0 * uniform(seed, (n, classes)) - 2.0
  boost = 6.0 * uniform(seed + 1, (n,))
  x[np.arange(n), (np.arange(n) * 7) % 37] += boost
  return x.astype(np.float32)
