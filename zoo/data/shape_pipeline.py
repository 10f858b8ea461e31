"""Batches of shapes for 3D tokenizers: {"surface", "queries", "labels"} as numpy arrays.

Training batches draw, per shape and step, `num_surface` of its cached surface points (without
replacement) and `num_queries` occupancy queries, half uniform in the cube and half near the
surface (3DShape2VecSet's mix). Evaluation batches are fixed: the first points of each kind.
`ShapeStream` is checkpointable (get_state/set_state), so a resumed run sees the same batches;
each process of a multi-host run takes its own shard of the shapes.
"""
import json

import numpy as np

from zoo.data.shape_cache import ShapeSample


def _take(sample: ShapeSample, rng, num_surface: int, num_queries: int) -> dict:
  if num_surface > len(sample.surface) or num_queries // 2 > len(sample.uniform):
    raise ValueError(f"{sample.name}: asked for {num_surface} surface points and "
                     f"{num_queries} queries; the cache holds {len(sample.surface)} and "
                     f"{2 * len(sample.uniform)}")
  if rng is None:  # evaluation: fixed points
    s = np.arange(num_surface)
    u = n = np.arange(num_queries // 2)
  else:
    s = rng.choice(len(sample.surface), num_surface, replace=False)
    u = rng.choice(len(sample.uniform), num_queries // 2, replace=False)
    n = rng.choice(len(sample.near), num_queries - num_queries // 2, replace=False)
  return {"surface": sample.surface[s],
          "queries": np.concatenate([sample.uniform[u], sample.near[n]]),
          "labels": np.concatenate([sample.uniform_labels[u], sample.near_labels[n]])}


def collate(items: list[dict]) -> dict:
  return {k: np.stack([it[k] for it in items]) for k in items[0]}


def eval_batches(samples, *, batch_size: int, num_surface: int, num_queries: int) -> list:
  """Fixed batches over every shape (the last one may be smaller)."""
  items = [_take(s, None, num_surface, num_queries) for s in samples]
  return [collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]


class ShapeStream:
  """Endless training batches: shapes in a fresh random order each epoch."""

  def __init__(self, samples, *, batch_size: int, num_surface: int, num_queries: int,
               seed: int, process_index: int = 0, process_count: int = 1):
    self._samples = [s for i, s in enumerate(samples) if i % process_count == process_index]
    if len(self._samples) < batch_size:
      raise ValueError(f"{len(self._samples)} shapes for this process, fewer than the batch "
                       f"size {batch_size}")
    self._sizes = (batch_size, num_surface, num_queries)
    self._seed, self._step = seed, 0

  def __iter__(self):
    return self

  def __next__(self):
    batch_size, num_surface, num_queries = self._sizes
    per_epoch = len(self._samples) // batch_size
    epoch, offset = divmod(self._step, per_epoch)
    order = np.random.default_rng([self._seed, epoch]).permutation(len(self._samples))
    rng = np.random.default_rng([self._seed, epoch, offset, 1])
    picked = order[offset * batch_size:(offset + 1) * batch_size]
    self._step += 1
    return collate([_take(self._samples[i], rng, num_surface, num_queries) for i in picked])

  def get_state(self) -> bytes:
    return json.dumps({"step": self._step}).encode()

  def set_state(self, state: bytes):
    self._step = int(json.loads(state)["step"])
