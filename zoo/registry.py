"""The zoo's registry: name -> model config -> NNX model.

Families register their released models in `zoo/configs/<family>.py` (a `MODELS` dict of
name -> (model config, hugging face repo id or None)) and their builder and checkpoint
converter here.
"""
import dataclasses
from typing import Callable

from flax import nnx


@dataclasses.dataclass(frozen=True)
class Entry:
  name: str
  config: object
  build: Callable  # (config, rngs, dtype=None) -> nnx.Module
  load_state_dict: Callable  # (model, {official name: array}, model_name=) -> None; raises
  table: Callable  # config -> [Rule]: the official names and shapes the converter expects
  hf_repo: str | None
  check_config: Callable | None = None  # (config, config.json dict, model_name=, source=)
  read_checkpoint: Callable | None = None  # (source, model_name=) -> state dict; default files'
  # (source, model_name=) -> model config read from the checkpoint itself (FlexTok's header).
  config_from_checkpoint: Callable | None = None


_REGISTRY: dict[str, Entry] = {}


def register(name: str, config, build, converter, hf_repo=None):
  """`converter` is a module of zoo/convert with `table(config)` and `load_state_dict`."""
  if name in _REGISTRY:
    raise ValueError(f"model {name!r} is registered twice")
  _REGISTRY[name] = Entry(name, config, build, converter.load_state_dict, converter.table,
                          hf_repo, getattr(converter, "check_config", None),
                          getattr(converter, "read_checkpoint", None),
                          getattr(converter, "config_from_checkpoint", None))


def _register_families():
  from zoo.configs import maskgit_vqgan, titok
  from zoo.convert import maskgit_vqgan as maskgit_convert
  from zoo.convert import titok as titok_convert
  from models.image.maskgit_vqgan import MaskGitVQGAN
  from models.image.titok import TiTok

  from zoo.configs import one_d_piece
  for name, (cfg, repo) in (titok.MODELS | one_d_piece.MODELS).items():
    register(name, cfg, lambda c, rngs, dtype=None: TiTok(c, rngs=rngs, dtype=dtype),
             titok_convert, repo)
  for name, (cfg, repo) in maskgit_vqgan.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: MaskGitVQGAN(c, rngs=rngs, dtype=dtype),
             maskgit_convert, repo)

  from zoo.configs import perception
  from zoo.convert import convnext as convnext_convert
  from zoo.convert import inception as inception_convert
  from zoo.convert import lpips as lpips_convert
  from zoo.convert import lpips_alex as lpips_alex_convert
  from models.perception.alex_lpips import AlexLPIPS
  from models.perception.convnext import ConvNeXt
  from models.perception.i3d import I3D
  from models.perception.inception import InceptionV3
  from models.perception.vgg_lpips import LPIPS
  from zoo.convert import i3d as i3d_convert
  builders = {"lpips_vgg": (LPIPS, lpips_convert),
              "lpips_alex": (AlexLPIPS, lpips_alex_convert),
              "convnext_s_imagenet": (ConvNeXt, convnext_convert),
              "inception_fid": (InceptionV3, inception_convert),
              "i3d_kinetics400": (I3D, i3d_convert)}
  for name, (cfg, repo) in perception.MODELS.items():
    module, converter = builders[name]
    register(name, cfg, lambda c, rngs, m=module: m(c, rngs=rngs), converter, repo)

  from zoo.configs import kl_vae
  from zoo.convert import kl_vae as kl_vae_convert
  from models.image.kl_vae import KLVAE
  for name, (cfg, repo) in kl_vae.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: KLVAE(c, rngs=rngs, dtype=dtype),
             kl_vae_convert, repo)

  from zoo.configs import karl
  for name, (cfg, repo) in karl.MODELS.items():  # halting heads on frozen One-D-Piece bases
    register(name, cfg, karl.build, karl.converter, repo)

  from zoo.configs import flextok
  from zoo.convert import flextok as flextok_convert
  from models.image.flextok import FlexTok
  for name, (cfg, repo) in flextok.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: FlexTok(c, rngs=rngs, dtype=dtype),
             flextok_convert, repo)

  from zoo.configs import gpstoken
  from zoo.convert import gpstoken as gpstoken_convert
  from models.image.gpstoken import GPSToken
  for name, (cfg, repo) in gpstoken.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: GPSToken(c, rngs=rngs, dtype=dtype),
             gpstoken_convert, repo)

  from zoo.configs import larp
  from zoo.convert import larp as larp_convert
  from models.video.larp import LARP
  for name, (cfg, repo) in larp.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: LARP(c, rngs=rngs, dtype=dtype),
             larp_convert, repo)

  from zoo.configs import omnitokenizer
  from zoo.convert import omnitokenizer as omnitokenizer_convert
  from models.video.omnitokenizer import OmniTokenizer
  for name, (cfg, repo) in omnitokenizer.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: OmniTokenizer(c, rngs=rngs, dtype=dtype),
             omnitokenizer_convert, repo)

  from zoo.configs import shape2vecset
  from zoo.convert import shape2vecset as shape2vecset_convert
  from models.threed.shape2vecset import Shape2VecSet
  for name, (cfg, repo) in shape2vecset.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: Shape2VecSet(c, rngs=rngs, dtype=dtype),
             shape2vecset_convert, repo)

  from zoo.configs import vat
  from zoo.convert import vat as vat_convert
  from models.threed.vat import VAT
  for name, (cfg, repo) in vat.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: VAT(c, rngs=rngs, dtype=dtype), vat_convert,
             repo)

  from zoo.configs import dac
  from zoo.convert import dac as dac_convert
  from models.audio.dac import DAC
  for name, (cfg, repo) in dac.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: DAC(c, rngs=rngs, dtype=dtype),
             dac_convert, repo)

  from zoo.configs import encodec
  from zoo.convert import encodec as encodec_convert
  from models.audio.encodec import Encodec
  for name, (cfg, repo) in encodec.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: Encodec(c, rngs=rngs, dtype=dtype),
             encodec_convert, repo)

  from zoo.configs import snac
  from zoo.convert import snac as snac_convert
  from models.audio.snac import SNAC
  for name, (cfg, repo) in snac.MODELS.items():
    register(name, cfg, lambda c, rngs, dtype=None: SNAC(c, rngs=rngs, dtype=dtype),
             snac_convert, repo)


def _entries() -> dict[str, Entry]:
  if not _REGISTRY:
    _register_families()
  return _REGISTRY


def list_models() -> list[str]:
  return sorted(_entries())


def get(name: str) -> Entry:
  entries = _entries()
  if name not in entries:
    raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(entries))}")
  return entries[name]


def create(name: str, *, seed: int = 0, dtype=None, **overrides) -> nnx.Module:
  """A randomly initialised model; `overrides` replace fields of its config.

  `dtype` is the activation dtype (e.g. jnp.bfloat16); parameters stay float32 and
  quantizers compute in float32.
  """
  entry = get(name)
  cfg = dataclasses.replace(entry.config, **overrides) if overrides else entry.config
  return entry.build(cfg, nnx.Rngs(seed), dtype=dtype) if dtype else entry.build(
      cfg, nnx.Rngs(seed))


def from_pretrained(name: str, checkpoint: str | None = None, **overrides) -> nnx.Module:
  """The model with released weights from a HF repo dir, a .safetensors/.bin file or a repo id."""
  from zoo.convert.files import read_checkpoint, read_repo_config
  entry = get(name)
  source = checkpoint or entry.hf_repo
  # Shapes only: every parameter is then filled from the checkpoint (the loader checks it).
  if entry.config_from_checkpoint is not None:  # the checkpoint carries its architecture
    cfg = entry.config_from_checkpoint(source, model_name=name)
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    model = nnx.eval_shape(lambda: entry.build(cfg, nnx.Rngs(0)))
  else:
    model = nnx.eval_shape(lambda: create(name, **overrides))
  hf_config = read_repo_config(source)  # a repo dir's config.json: a clear "other model" error
  if hf_config is not None and entry.check_config is not None:
    entry.check_config(model.config, hf_config, model_name=name, source=source)
  state_dict = (entry.read_checkpoint or read_checkpoint)(source, model_name=name)
  entry.load_state_dict(model, state_dict, model_name=name)
  return model
