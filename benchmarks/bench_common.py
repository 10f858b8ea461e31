"""What the benchmark scripts share: a JSON-lines results file and a warm median timer."""
import json
import pathlib
import statistics
import time

import jax


class JsonLinesLog:
  """Appends one JSON record per line to `path` (made with its parents), flushed each time."""

  def __init__(self, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    self._file = path.open("w")

  def __call__(self, record: dict) -> None:
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def median_seconds(fn, args, reps: int):
  """(median, all) wall seconds of `reps` calls of a jax function, after one warm-up call."""
  jax.block_until_ready(fn(*args))  # compile and warm up
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times), times


def alternating_seconds(fns: dict, reps: int) -> dict:
  """{name: [wall seconds]} of `reps` calls of each of `fns` (warm, each blocking until done),
  alternating, the order flipping every repetition so that machine noise hits every side."""
  times = {name: [] for name in fns}
  for rep in range(reps):
    for name in (list(fns) if rep % 2 == 0 else list(fns)[::-1]):
      start = time.perf_counter()
      fns[name]()
      times[name].append(time.perf_counter() - start)
  return times
