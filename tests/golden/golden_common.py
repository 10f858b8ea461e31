"""Helpers the golden scripts share. Standard library and numpy only: the scripts run in a
venv with the official code's dependencies, without jax.
"""
import importlib
import importlib.util
import pathlib
import sys
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_module(name: str, path: pathlib.Path):
  """A module loaded by file path, so that its package's __init__ (e.g. zoo's) is not run."""
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def load_seeded_module():
  """zoo/convert/seeded.py (zoo/__init__ needs jax)."""
  return load_module("zoo_seeded", ROOT / "zoo/convert/seeded.py")


def shape_table(module) -> dict:
  """{key: shape} of a torch module's state dict (works on the meta device)."""
  return {k: list(v.shape) for k, v in module.state_dict().items()}


def prepare_official_imports(repo: pathlib.Path):
  """Makes `modeling.*` of the official repo importable without modeling/modules/__init__.py,
  which pulls in the training losses (torchvision, LPIPS, diffusion) that most goldens don't
  need: a bare package object stands in for it."""
  sys.path.insert(0, str(repo))
  importlib.import_module("modeling")
  pkg = types.ModuleType("modeling.modules")
  pkg.__path__ = [str(repo / "modeling" / "modules")]
  sys.modules["modeling.modules"] = pkg


def photos(size: int) -> np.ndarray:
  """scikit-image's astronaut and coffee, resized: float32 [2, size, size, 3] in [0, 1]."""
  from skimage import data
  from skimage.transform import resize
  imgs = [resize(im, (size, size), anti_aliasing=True) for im in (data.astronaut(), data.coffee())]
  return np.stack(imgs).astype(np.float32)
