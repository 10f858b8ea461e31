"""Finds and reads a released checkpoint: a HF repo directory, a single file, or a repo id."""
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
  while isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
    inner = [k for k in _STATE_DICT_KEYS if k in obj]
    if not inner:
      raise CheckpointFormatError(f"{path}: no tensors found (top-level keys {list(obj)[:10]})")
    obj = obj[inner[0]]
  return dict(obj)


def read_file(path) -> dict:
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  if path.suffix == ".safetensors":
    return read_safetensors(path)
  if path.suffix in (".bin", ".pth", ".pt", ".ckpt"):
    return _unwrap(load_torch_checkpoint(path), path)
  raise CheckpointFormatError(f"{path}: unknown checkpoint format {path.suffix!r} "
                              "(expected .safetensors, .bin, .pth or .pt)")


def _download(repo_id: str, model_name: str) -> pathlib.Path:
  filename = RAW_FILES.get(model_name, WEIGHT_FILES[0])
  hint = (f"download {filename} from https://huggingface.co/{repo_id} and pass its path "
          f"(or the directory holding it) as checkpoint=")
  if os.environ.get("HF_HUB_OFFLINE"):
    raise FileNotFoundError(f"offline (HF_HUB_OFFLINE is set): {hint}")
  try:
    from huggingface_hub import hf_hub_download
    return pathlib.Path(hf_hub_download(repo_id, filename))
  except Exception as e:  # no network, unknown repo, missing file: say what to fetch by hand.
    raise FileNotFoundError(f"could not download {repo_id}/{filename} ({type(e).__name__}); "
                            f"{hint}") from e


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
