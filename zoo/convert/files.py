"""Finds and reads a released checkpoint: a HF repo directory, a single file, or a repo id."""
import json
import os
import pathlib

import numpy as np

from zoo.convert.torch_pickle import CheckpointFormatError, load_torch_checkpoint

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Some releases are raw state dicts rather than HF mixin pushes: name -> file in the repo.
RAW_FILES = {"maskgit_vqgan_f16": "maskgit-vqgan-imagenet-f16-256.bin"}
# Wrappers that training scripts put around a state dict.
_STATE_DICT_KEYS = ("state_dict", "model", "ema", "module")


def read_safetensors(path) -> dict:
  from safetensors.numpy import load_file
  try:
    return load_file(str(path))
  except Exception as e:  # safetensors raises its own error types for bad headers / sizes.
    raise CheckpointFormatError(f"{path}: truncated or corrupt .safetensors file ({e})") from e


def _unwrap(obj, path) -> dict:
  # A wrapper key holding a dict wins even when tensors sit beside it ({"model": sd, "step": t}).
  while isinstance(obj, dict):
    inner = [k for k in _STATE_DICT_KEYS if isinstance(obj.get(k), dict)]
    if inner:
      obj = obj[inner[0]]
    elif any(isinstance(v, np.ndarray) for v in obj.values()):
      return dict(obj)
    else:
      raise CheckpointFormatError(f"{path}: no tensors found (top-level keys {list(obj)[:10]})")
  raise CheckpointFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")


def read_file(path) -> dict:
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  if path.suffix == ".safetensors":
    return read_safetensors(path)
  if path.suffix in (".bin", ".pth", ".pt", ".ckpt", ".th"):
    return _unwrap(load_torch_checkpoint(path), path)
  raise CheckpointFormatError(f"{path}: unknown checkpoint format {path.suffix!r} "
                              "(expected .safetensors, .bin, .pth, .pt or .th)")


def _offline() -> bool:
  return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _download(repo_id: str, model_name: str) -> pathlib.Path:
  filename = RAW_FILES.get(model_name, WEIGHT_FILES[0])
  hint = (f"download {filename} from https://huggingface.co/{repo_id} and pass its path "
          f"(or the directory holding it) as checkpoint=")
  offline = _offline()
  try:  # offline: the HF cache may still hold it.
    from huggingface_hub import hf_hub_download
    return pathlib.Path(hf_hub_download(repo_id, filename, local_files_only=offline))
  except Exception as e:  # no network, unknown repo, missing file: say what to fetch by hand.
    why = ("offline (HF_HUB_OFFLINE is set) and not in the HF cache" if offline
           else f"could not download it ({type(e).__name__})")
    raise FileNotFoundError(f"{repo_id}/{filename}: {why}; {hint}") from e


def released_file(source, *, weight_file: str, url: str, model_name: str) -> pathlib.Path:
  """The path of a released weight file given as itself or as a directory that holds it."""
  if source is None:
    raise FileNotFoundError(f"{model_name}: pass checkpoint= the path of {weight_file} "
                            f"(download {url})")
  path = pathlib.Path(source)
  if path.is_dir():
    path = path / weight_file
    if not path.is_file():
      raise FileNotFoundError(f"{source} does not hold {weight_file} (download {url})")
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path} (download {url})")
  return path


def read_repo_config(source) -> dict | None:
  """The config.json of a HF repo directory (the official OmegaConf dump), or None."""
  path = pathlib.Path(source) / "config.json" if source is not None else None
  if path is None or not path.is_file():
    return None
  try:
    return json.loads(path.read_text())
  except (ValueError, UnicodeDecodeError) as e:
    raise CheckpointFormatError(f"{path}: not valid JSON ({e})") from e


def read_checkpoint(source: str | os.PathLike | None, *, model_name: str) -> dict:
  """{official tensor name: numpy array} from a directory, a file, or a HF repo id."""
  if source is None:
    raise ValueError(f"{model_name} has no released checkpoint; pass checkpoint=PATH")
  path = pathlib.Path(source)
  if path.is_dir():
    candidates = [path / f for f in WEIGHT_FILES + (RAW_FILES.get(model_name, ""),)
                  if f and (path / f).is_file()]
    if not candidates:
      raise FileNotFoundError(
          f"{path} holds none of {', '.join(WEIGHT_FILES + tuple(RAW_FILES.values()))}")
    return read_file(candidates[0])
  if path.exists() or path.suffix in (".safetensors", ".bin", ".pth", ".pt"):
    return read_file(path)
  if str(source).count("/") == 1 and not str(source).startswith((".", "/")):
    return read_file(_download(str(source), model_name))
  raise FileNotFoundError(f"checkpoint not found: {source}")
