"""Reads PyTorch `torch.save` zip checkpoints (.bin/.pth/.pt) into numpy, without torch.

Only tensors, parameters and plain containers are unpickled: a whitelist of globals, so a
checkpoint cannot run code on load. Anything else is an error that names the object.
"""
import collections
import pickle
import zipfile
import zlib

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointFormatError(ValueError):
  pass


def _rebuild_tensor(storage, offset, size, stride, *unused):
  offset = int(offset)
  if not isinstance(storage, np.ndarray):
    raise CheckpointFormatError(f"tensor without a storage (got {type(storage).__name__})")
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  # as_strided does no bounds checks: a bad size/stride/offset must not read past the storage.
  last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
  if offset < 0 or len(size) != len(stride) or min(stride, default=0) < 0 or last >= len(storage):
    raise CheckpointFormatError(
        f"tensor of size {size}, stride {stride}, offset {offset} lies outside its storage "
        f"of {len(storage)} elements (truncated or corrupt)")
  if not size:
    return storage[offset:offset + 1].reshape(()).copy()
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
  return np.ascontiguousarray(view)


def _rebuild_parameter(data, *unused):
  return data


class _StorageType:
  def __init__(self, name):
    self.dtype = _STORAGE_DTYPES[name]


class PickledNamespace:
  """The attributes of a pickled argparse.Namespace; no behaviour of its own (pickle sets its
  __dict__ and calls nothing)."""


# For `extra_globals`: training scripts save their argparse arguments beside the weights.
ARGPARSE_NAMESPACE = {("argparse", "Namespace"): PickledNamespace}


def namespaces_as_dicts(value):
  """`value` with every PickledNamespace, at any depth of dicts, turned into a plain dict."""
  if isinstance(value, PickledNamespace):
    value = dict(vars(value))
  if isinstance(value, dict):
    return {k: namespaces_as_dicts(v) for k, v in value.items()}
  return value


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str, extra_globals: dict):
    super().__init__(file)
    self._archive, self._prefix, self._storages = archive, prefix, {}
    self._extra = extra_globals

  def find_class(self, module, name):
    if (module, name) in self._extra:
      return self._extra[(module, name)]
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise CheckpointFormatError(
        f"unsupported object {module}.{name} in the checkpoint; only tensors and dicts of "
        "tensors can be read (re-save it as a state dict or as .safetensors)")

  def persistent_load(self, pid):
    kind, storage_type, key, _, numel = pid
    if kind != "storage":
      raise CheckpointFormatError(f"unsupported persistent object {kind!r}")
    if key not in self._storages:
      raw = self._archive.read(f"{self._prefix}/data/{key}")
      dtype = np.dtype(storage_type.dtype)
      if len(raw) < numel * dtype.itemsize:
        raise CheckpointFormatError(f"storage {key} is truncated")
      self._storages[key] = np.frombuffer(raw, dtype=dtype, count=numel)
    return self._storages[key]


def load_torch_checkpoint(path, *, extra_globals: dict | None = None) -> dict:
  """Returns the checkpoint's (possibly nested) dict with numpy arrays for tensors.

  `extra_globals` {(module, name): stand-in} admits more objects, each mapped to an inert
  stand-in of the caller's (e.g. a plain class for a pickled argparse.Namespace).
  """
  with open(path, "rb") as f:
    if f.read(4) != b"PK\x03\x04":
      raise CheckpointFormatError(
          f"{path}: not a zip-format torch.save checkpoint (legacy or corrupt file); re-save it "
          "with torch>=1.6 torch.save, or as .safetensors")
  try:
    archive = zipfile.ZipFile(path)
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pickles:
      raise CheckpointFormatError("no data.pkl inside; not a torch.save zip checkpoint")
    prefix = pickles[0].rsplit("/", 1)[0] if "/" in pickles[0] else ""
    with archive.open(pickles[0]) as f:
      return _Unpickler(f, archive, prefix, extra_globals or {}).load()
  except CheckpointFormatError as e:
    raise CheckpointFormatError(f"{path}: {e}") from None
  except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, pickle.UnpicklingError, ValueError,
          TypeError) as e:
    raise CheckpointFormatError(
        f"{path}: truncated or corrupt PyTorch checkpoint ({type(e).__name__}: {e})") from e
