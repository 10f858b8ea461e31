"""3DShape2VecSet training checkpoints (`checkpoint-N.pth`) -> Shape2VecSet.

The file is util/misc.py's `save_model` dict: `model` (the state dict), `optimizer`, `scaler`,
`epoch` and `args`, the training script's argparse Namespace; it is read with the restricted
unpickler (torch_pickle.py), which admits that Namespace as a plain attribute holder and
nothing else. `args.model` names the models_ae.py function that built the network; it must be
the architecture asked for. `point_embed.basis` is a fixed buffer: checked against the
model's, not loaded.
"""
import dataclasses
import functools
import os
import pathlib

import numpy as np

from models.threed.point_embed import fourier_basis
from models.threed.shape2vecset import Shape2VecSet, Shape2VecSetConfig
from zoo.convert import common
from zoo.convert.common import LINEAR, Rule, linear_rules, norm_rules
from zoo.convert.torch_pickle import (ARGPARSE_NAMESPACE, CheckpointFormatError,
                                     load_torch_checkpoint, namespaces_as_dicts)

BASIS = "point_embed.basis"


def _prenorm(src: str, dst: str, *, context: bool) -> list[Rule]:
  rules = norm_rules(f"{src}.norm", f"{dst}.norm")
  return rules + (norm_rules(f"{src}.norm_context", f"{dst}.norm_context") if context else [])


def _attention(src: str, dst: str, *, context: bool = False) -> list[Rule]:
  return (_prenorm(src, dst, context=context)
          + [Rule(f"{src}.fn.to_q.weight", f"{dst}.fn.to_q.kernel", LINEAR),
             Rule(f"{src}.fn.to_kv.weight", f"{dst}.fn.to_kv.kernel", LINEAR)]
          + linear_rules(f"{src}.fn.to_out", f"{dst}.fn.to_out"))


def _feed_forward(src: str, dst: str) -> list[Rule]:
  return (_prenorm(src, dst, context=False) + linear_rules(f"{src}.fn.net.0", f"{dst}.fn.net_0")
          + linear_rules(f"{src}.fn.net.2", f"{dst}.fn.net_2"))


def table(cfg: Shape2VecSetConfig) -> list[Rule]:
  rules = linear_rules("point_embed.mlp", "point_embed.mlp")
  rules += _attention("cross_attend_blocks.0", "encoder_cross_attn", context=True)
  rules += _feed_forward("cross_attend_blocks.1", "encoder_ff")
  if cfg.is_kl:
    for name in ("mean_fc", "logvar_fc", "proj"):
      rules += linear_rules(name, name)
  for i in range(cfg.depth):
    rules += _attention(f"layers.{i}.0", f"layers.{i}.attn")
    rules += _feed_forward(f"layers.{i}.1", f"layers.{i}.ff")
  rules += _attention("decoder_cross_attn", "decoder_cross_attn", context=True)
  if cfg.decoder_ff:
    rules += _feed_forward("decoder_ff", "decoder_ff")
  return rules + linear_rules("to_outputs", "to_outputs")


def load_state_dict(model: Shape2VecSet, state_dict: dict, *, model_name: str = "shape2vecset"):
  state_dict = dict(state_dict)
  if BASIS in state_dict:
    got = np.asarray(state_dict.pop(BASIS))
    want = fourier_basis(model.config.point_embed_hidden)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=0):
      raise common.CheckpointMismatchError(
          f"checkpoint does not fit {model_name}: {BASIS} {got.shape} is not the fixed "
          f"Fourier basis {want.shape} of a {model.config.point_embed_hidden}-wide embedding")
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


@functools.lru_cache(maxsize=1)
def _read(path: str, mtime: float) -> tuple[dict, dict]:
  ckpt = load_torch_checkpoint(path, extra_globals=ARGPARSE_NAMESPACE)
  if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
    keys = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise CheckpointFormatError(f"{path}: not a 3DShape2VecSet training checkpoint (no "
                                f"'model' state dict; top level {keys})")
  bad = [k for k, v in ckpt["model"].items() if not isinstance(v, np.ndarray)]
  if bad:
    raise CheckpointFormatError(f"{path}: 'model' entries that are not tensors: {bad[:5]}")
  args = namespaces_as_dicts(ckpt.get("args"))
  return ckpt["model"], args if isinstance(args, dict) else {}


def read_pth(source, *, model_name: str = "shape2vecset") -> tuple[dict, dict]:
  """(state dict, training args as a dict) of a checkpoint-N.pth; read once for both."""
  if source is None:
    raise FileNotFoundError(
        f"{model_name} has no hub repo: pass checkpoint= the authors' checkpoint-N.pth (the "
        "Google Drive folder linked from 1zb/3DShape2VecSet's README)")
  path = pathlib.Path(source)
  if path.is_dir():
    found = sorted(path.glob("checkpoint-*.pth"),
                   key=lambda p: int(p.stem.split("-")[-1]) if p.stem.split("-")[-1].isdigit()
                   else -1)
    if not found:
      raise FileNotFoundError(f"no checkpoint-*.pth in {path}")
    path = found[-1]  # the last epoch
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  return _read(str(path), os.path.getmtime(path))


def read_checkpoint(source, *, model_name: str = "shape2vecset") -> dict:
  state_dict = read_pth(source, model_name=model_name)[0]
  _read.cache_clear()  # read after the config: the weights need not stay cached
  return state_dict


def config_from_checkpoint(source, *, model_name: str = "shape2vecset") -> Shape2VecSetConfig:
  """The registered architecture, after checking the file's `args.model` names it."""
  from zoo.configs import shape2vecset as configs
  registered = configs.MODELS[model_name][0]
  _, args = read_pth(source, model_name=model_name)
  trained_as = args.get("model")
  want = configs.official_name(model_name)
  if want is not None and trained_as is not None and trained_as != want:
    other = f"{configs.PREFIX}{trained_as}"
    hint = (f"load it as {other!r}" if other in configs.MODELS
            else "an architecture the zoo does not register")
    raise common.CheckpointMismatchError(
        f"{source} was trained as {trained_as!r}, not {want!r} ({model_name}): {hint}")
  size = args.get("point_cloud_size")
  return dataclasses.replace(registered, num_inputs=int(size)) if size else registered
