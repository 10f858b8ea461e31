"""Metrics as JSON lines in <workdir>/metrics.jsonl, written by process 0 only."""
import json
import pathlib

import jax
import numpy as np


class MetricsWriter:

  def __init__(self, workdir):
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self.enabled = jax.process_index() == 0

  def write(self, step: int, metrics: dict):
    if not self.enabled:
      return
    row = {"step": int(step), **{k: float(np.asarray(v)) for k, v in metrics.items()}}
    with self.path.open("a") as f:
      f.write(json.dumps(row) + "\n")


def read_metrics(workdir) -> list[dict]:
  path = pathlib.Path(workdir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
