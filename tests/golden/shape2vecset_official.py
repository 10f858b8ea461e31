"""Imports 3DShape2VecSet's models_ae.py (1zb/3DShape2VecSet) from a local checkout, for the
golden script and the benchmark.

Two of its imports cannot run here, so stand-ins are installed first:
  * torch_cluster (a CUDA/C++ extension): `fps` as a torch transcription of its CPU kernel
    (squared distances to the nearest picked point, argmax, first index on ties), starting at
    index 0 instead of at random so that the goldens are deterministic;
  * timm's DropPath: the identity it is at evaluation (these goldens run in eval mode).
"""
import pathlib
import sys
import types

from golden_common import load_module


def _fps(src, batch, ratio=0.5, random_start=False):
  import torch
  del random_start  # always index 0: the zoo's deterministic start
  out = []
  for b in torch.unique(batch, sorted=True):
    where = torch.nonzero(batch == b)[:, 0]
    points = src[where]
    count = int(torch.ceil(torch.tensor(ratio * points.shape[0])).item())
    picked = [0]
    nearest = (points - points[0]).pow(2).sum(1)
    for _ in range(1, count):
      farthest = int(torch.argmax(nearest))
      picked.append(farthest)
      nearest = torch.minimum(nearest, (points - points[farthest]).pow(2).sum(1))
    out.append(where[torch.tensor(picked)])
  return torch.cat(out)


def _install_stand_ins():
  from torch import nn
  cluster = types.ModuleType("torch_cluster")
  cluster.fps = _fps
  sys.modules["torch_cluster"] = cluster

  class DropPath(nn.Identity):
    def __init__(self, drop_prob=0.0):
      super().__init__()
      self.drop_prob = drop_prob

  layers = types.ModuleType("timm.models.layers")
  layers.DropPath = DropPath
  timm = types.ModuleType("timm")
  models = types.ModuleType("timm.models")
  timm.models, models.layers = models, layers
  sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})


def import_official(repo: pathlib.Path):
  """The official models_ae module."""
  _install_stand_ins()
  return load_module("models_ae", pathlib.Path(repo) / "models_ae.py")
