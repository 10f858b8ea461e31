"""Imports the official OmniTokenizer tokenizer (FoundationVision/OmniTokenizer) from a local
checkout, for the golden script and the benchmark; standard library only until the official
modules import torch.

The package `__init__` and `omnitokenizer.py` pull in the data loaders, the LM, Lightning, the
LPIPS net and the discriminators; the tokenizer's forward needs none of them. Bare package
objects stand in for `OmniTokenizer` and `OmniTokenizer.modules`, Lightning's LightningModule
is torch's nn.Module, and `base` / the external quantizer are empty stand-ins. timm (which the
blocks import) gets larp_official's torchvision stand-in. So the official VQGAN class itself is
built, with its own constructor, encode and decode; its LPIPS and discriminators are identity
stand-ins (no weights), and Lightning's save_hyperparameters does nothing.

`modules/attention.py` takes a scaled_dot_product_attention branch under torch >= 2.1 that
drops the causal ALiBi and the continuous relative-position bias; the released weights were
trained on the other (the paper's) branch, so the attention module is given a view of
torch.nn.functional without scaled_dot_product_attention.
"""
import importlib
import pathlib
import sys
import types

from golden_common import load_module
from larp_official import _TorchvisionStandIn


def _package(name, path):
  pkg = types.ModuleType(name)
  pkg.__path__ = [str(path)]
  sys.modules[name] = pkg
  return pkg


def _functional_without_sdpa():
  import torch.nn.functional as F
  view = types.ModuleType("functional_without_sdpa")
  view.__dict__.update({k: v for k, v in vars(F).items()
                        if k != "scaled_dot_product_attention"})
  return view


def import_official(repo: pathlib.Path):
  """(the VQGAN class, DiagonalGaussianDistribution)."""
  src = repo / "OmniTokenizer"
  if not (src / "omnitokenizer.py").is_file():
    raise FileNotFoundError(f"{repo} has no OmniTokenizer/omnitokenizer.py; pass a checkout "
                            "of github.com/FoundationVision/OmniTokenizer")
  import torch
  if not any(isinstance(f, _TorchvisionStandIn) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionStandIn())
  lightning = types.ModuleType("pytorch_lightning")
  lightning.LightningModule = type("LightningModule", (torch.nn.Module,),
                                   {"save_hyperparameters": lambda self, *a, **k: None})
  sys.modules["pytorch_lightning"] = lightning
  _package("OmniTokenizer", src)
  modules = _package("OmniTokenizer.modules", src / "modules")
  _package("OmniTokenizer.quantizer", src / "quantizer")
  utils = load_module("OmniTokenizer.utils", src / "utils.py")
  sys.modules["OmniTokenizer.utils"] = utils
  attention = load_module("OmniTokenizer.modules.attention", src / "modules" / "attention.py")
  attention.F = _functional_without_sdpa()
  sys.modules["OmniTokenizer.modules.attention"] = attention
  codebook = load_module("OmniTokenizer.modules.codebook", src / "modules" / "codebook.py")
  vae = load_module("OmniTokenizer.modules.vae", src / "modules" / "vae.py")
  sys.modules["OmniTokenizer.modules.vae"] = vae
  identity = lambda *args, **kwargs: torch.nn.Identity()
  modules.Codebook, modules.LPIPS = codebook.Codebook, identity
  base = types.ModuleType("OmniTokenizer.base")
  base.Normalize = base.NLayerDiscriminator = base.NLayerDiscriminator3D = identity
  sys.modules["OmniTokenizer.base"] = base
  external = types.ModuleType("OmniTokenizer.quantizer.vector_quantize_pytorch")
  external.VectorQuantize = None
  sys.modules["OmniTokenizer.quantizer.vector_quantize_pytorch"] = external
  omni = importlib.import_module("OmniTokenizer.omnitokenizer")
  return omni.VQGAN, vae.DiagonalGaussianDistribution
