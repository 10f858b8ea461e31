"""Reads PyTorch Lightning `.ckpt` files without running their pickled code.

A Lightning checkpoint is a `torch.save` zip whose `state_dict` holds the weights and whose
`hyper_parameters` hold what `save_hyperparameters()` saw: for argparse-driven projects
(OmniTokenizer) an `argparse.Namespace`. The restricted unpickler of torch_pickle.py reads it;
the Namespace becomes its `PickledNamespace`, a plain attribute holder, so any other global in
the file is still refused by name.
"""
import pathlib

import numpy as np

from zoo.convert.torch_pickle import (ARGPARSE_NAMESPACE, CheckpointFormatError,
                                     load_torch_checkpoint, namespaces_as_dicts)


def read_lightning_checkpoint(path) -> tuple[dict, dict]:
  """(state_dict {name: numpy array}, hyper-parameters as plain dicts) of a `.ckpt` file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  ckpt = load_torch_checkpoint(path, extra_globals=ARGPARSE_NAMESPACE)
  if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
    keys = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise CheckpointFormatError(f"{path}: not a Lightning checkpoint (no 'state_dict'; top "
                                f"level {keys})")
  state_dict = ckpt["state_dict"]
  bad = [k for k, v in state_dict.items() if not isinstance(v, np.ndarray)]
  if bad:
    raise CheckpointFormatError(f"{path}: state_dict entries that are not tensors: {bad[:5]}")
  return state_dict, namespaces_as_dicts(ckpt.get("hyper_parameters") or {})
