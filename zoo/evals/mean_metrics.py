"""Running means of per-example metric values across batches, shared by evaluators and trainer.

Sums are float64 on the host, so a mean over a 50k-image dataset is not limited by float32
rounding. Each metric keeps its own count: metrics may be updated on different batches.
"""
import numpy as np


class MeanMetrics:
  """`update(psnr=[B] values, ...)` for every batch, then `result()` -> {name: mean}."""

  def __init__(self):
    self._sums: dict[str, float] = {}
    self._counts: dict[str, int] = {}

  def update(self, values=None, /, **kwargs) -> None:
    """Adds values given as a mapping and/or keywords; every element is one example."""
    for name, v in {**(values or {}), **kwargs}.items():
      v = np.asarray(v, dtype=np.float64).reshape(-1)
      self._sums[name] = self._sums.get(name, 0.0) + float(np.sum(v))
      self._counts[name] = self._counts.get(name, 0) + v.size

  def result(self) -> dict[str, float]:
    """Mean of every metric seen (NaN and inf propagate: PSNR of an exact copy is inf)."""
    return {name: self._sums[name] / self._counts[name]
            for name in self._sums if self._counts[name] > 0}

  @property
  def counts(self) -> dict[str, int]:
    return dict(self._counts)

  def reset(self) -> None:
    self._sums.clear()
    self._counts.clear()
