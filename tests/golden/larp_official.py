"""Imports the official LARP tokenizer (hywang66/LARP) from a local checkout, for the golden
script and the benchmark; standard library only until the official modules import torch.

Its package `__init__` pulls in the training losses (lpips) and the AR generator, so a bare
package with the official `models/models.py` registry stands in for it; `utils` (FVD, FID,
requests) is replaced by the one helper the tokenizer calls. timm imports torchvision at module
level, whose C++ ops do not load against torch 2.13 here: an import hook gives it empty stand-in
modules (the ViT Block that LARP uses needs none of them).
"""
import importlib
import importlib.abc
import importlib.machinery
import pathlib
import sys
import types

from golden_common import load_module

class _StubMeta(type):
  def __getattr__(cls, name):
    if name.startswith("__"):
      raise AttributeError(name)
    return _stub_class(f"{cls.__name__}.{name}")


class _Stub(metaclass=_StubMeta):
  def __init__(self, *args, **kwargs):
    pass


_STUBS = {}


def _stub_class(name):
  # One distinct class per name: timm builds dicts keyed by InterpolationMode members.
  return _STUBS.setdefault(name, _StubMeta(name, (_Stub,), {}))


class _StubModule(types.ModuleType):
  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    return _stub_class(f"{self.__name__}.{name}")


class _TorchvisionStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def find_spec(self, name, path, target=None):
    if name == "torchvision" or name.startswith("torchvision."):
      return importlib.machinery.ModuleSpec(name, self, is_package=True)
    return None

  def create_module(self, spec):
    module = _StubModule(spec.name)
    module.__path__, module.__version__ = [], "0.0"
    return module

  def exec_module(self, module):
    pass


def _take_models_package() -> dict:
  """Removes and returns the `models` package entries of sys.modules (the zoo's own `models`,
  when a benchmark has imported it: the official package has the same name)."""
  names = [k for k in sys.modules if k == "models" or k.startswith("models.")]
  return {k: sys.modules.pop(k) for k in names}


def import_official(repo: pathlib.Path):
  """The official LARPTokenizer class. The zoo's `models` package, if imported, is set aside
  while the official one imports and restored afterwards; the official modules keep their
  own package bound at import time."""
  if not (repo / "models" / "larp_tokenizer.py").is_file():
    raise FileNotFoundError(f"{repo} has no models/larp_tokenizer.py; pass a checkout of "
                            "github.com/hywang66/LARP")
  zoo_models = _take_models_package()
  try:
    return _import_official(repo)
  finally:
    _take_models_package()
    sys.modules.update(zoo_models)


def _import_official(repo: pathlib.Path):
  sys.meta_path.insert(0, _TorchvisionStandIn())
  registry = load_module("models.models", repo / "models" / "models.py")
  pkg = types.ModuleType("models")
  pkg.__path__ = [str(repo / "models")]
  pkg.register, pkg.make, pkg.models = registry.register, registry.make, registry.models
  sys.modules["models"], sys.modules["models.models"] = pkg, registry
  utils = types.ModuleType("utils")
  utils.calculate_topk_accuracy = lambda *a, **k: {}  # training statistics only
  sys.modules["utils"] = utils
  for name in ("transformer", "bottleneck", "gptc", "larp_tokenizer"):
    importlib.import_module(f"models.{name}")
  return sys.modules["models.larp_tokenizer"].LARPTokenizer
