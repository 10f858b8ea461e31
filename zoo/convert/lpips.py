"""LPIPS-VGG weights from two released files -> models.perception.vgg_lpips.LPIPS.

`from_pretrained("lpips_vgg", checkpoint=DIR)`, where DIR holds both files unrenamed:
  vgg16-397923af.pth  the trunk: torchvision VGG16_Weights.IMAGENET1K_V1,
                      https://download.pytorch.org/models/vgg16-397923af.pth
  vgg.pth             the lin layers: `lpips/weights/v0.1/vgg.pth` inside the `lpips` wheel
                      (md5 d507d7349b931f0638a25a48a722f98a; the `vgg_lpips` file that TiTok and
                      taming-transformers download is the same file)
The state dict is the union of the two files' names. The torchvision file also holds VGG16's
fully connected head (`classifier.*`, 124M values), which LPIPS never uses: those names are
dropped, after their shapes are checked. `vgg.pth` predates torch's zip format, so the legacy
`torch.save` format is read here too (same whitelist of objects as zoo/convert/torch_pickle.py).
"""
import pathlib
import pickle

import numpy as np

from models.perception.vgg_lpips import VGG16_STAGES, LPIPSConfig
from zoo.convert import common, files, torch_pickle
from zoo.convert.common import CONV1X1_AS_DENSE, CONV2D, Rule

TRUNK_FILE = "vgg16-397923af.pth"
LIN_FILE = "vgg.pth"
TRUNK_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# Index of each conv in torchvision's `vgg16().features` (ReLU and MaxPool fill the gaps).
VGG16_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# In the trunk file but not in LPIPS: VGG16's classifier (Linear, ReLU, Dropout, ... x3).
DROPPED = {"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
           "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
           "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}


def table(cfg: LPIPSConfig = LPIPSConfig()) -> list[Rule]:
  del cfg  # one architecture
  rules = []
  for i, index in enumerate(VGG16_CONV_INDEX):
    rules += [Rule(f"features.{index}.weight", f"net.convs.{i}.kernel", CONV2D),
              Rule(f"features.{index}.bias", f"net.convs.{i}.bias")]
  # NetLinLayer is Sequential(Dropout, Conv2d 1x1 no bias): the conv is `model.1`.
  rules += [Rule(f"lin{k}.model.1.weight", f"lin.{k}.kernel", CONV1X1_AS_DENSE)
            for k in range(len(VGG16_STAGES))]
  return rules


def load_state_dict(model, state_dict, *, model_name: str = "lpips_vgg"):
  load_without_head(model, state_dict, table(model.config), DROPPED, model_name=model_name)


def load_without_head(model, state_dict, rules, dropped, *, model_name: str):
  """Loads through `rules` after checking and dropping the trunk's unused classifier."""
  wrong = [f"{k}: {np.shape(state_dict[k])}, expected {s}" for k, s in dropped.items()
           if k in state_dict and tuple(np.shape(state_dict[k])) != s]
  if wrong:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}: classifier of another shape:\n  "
        + "\n  ".join(wrong))
  kept = {k: v for k, v in state_dict.items() if k not in dropped}
  common.load_state_dict(model, kept, rules, model_name=model_name)


def read_checkpoint(source, *, model_name: str = "lpips_vgg") -> dict:
  """The merged {name: array} of the trunk and lin files in directory `source`."""
  return read_trunk_and_lin(source, TRUNK_FILE, TRUNK_URL, LIN_FILE, model_name=model_name)


def read_trunk_and_lin(source, trunk_file, trunk_url, lin_file, *, model_name: str) -> dict:
  """The union of a torchvision trunk file and an lpips lin file, both in directory `source`."""
  hint = (f"{model_name} loads from a directory holding {trunk_file} ({trunk_url}) and {lin_file}"
          f" (lpips/weights/v0.1/{lin_file} of `pip install lpips`); pass checkpoint=DIR")
  if source is None or not pathlib.Path(source).is_dir():
    raise FileNotFoundError(f"{hint}; got checkpoint={source!r}")
  paths = [pathlib.Path(source) / trunk_file, pathlib.Path(source) / lin_file]
  missing = [p.name for p in paths if not p.is_file()]
  if missing:
    raise FileNotFoundError(f"{source} lacks {', '.join(missing)}; {hint}")
  trunk, lin = (read_torch_file(p) for p in paths)
  both = sorted(set(trunk) & set(lin))
  if both:
    raise common.CheckpointMismatchError(f"{paths[0]} and {paths[1]} both hold {both}")
  return {**trunk, **lin}


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001


def read_torch_file(path) -> dict:
  """A checkpoint file in any format files.read_file reads, or a legacy (pre-1.6) torch.save."""
  with open(path, "rb") as f:
    head = f.read(2)
  if head != b"\x80\x02":  # not a pickle stream: zip, safetensors, or an error from files
    return files.read_file(path)
  state = load_legacy_torch_checkpoint(path)
  if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
    raise torch_pickle.CheckpointFormatError(f"{path}: expected a state dict of tensors")
  return dict(state)


class _Plain(pickle.Unpickler):
  """The header records and the storage-key list hold plain values only."""

  def find_class(self, module, name):
    raise torch_pickle.CheckpointFormatError(f"unexpected object {module}.{name} in the header")


class _LegacyUnpickler(torch_pickle._Unpickler):  # pylint: disable=protected-access
  """The whitelisted unpickler, with storages handed in rather than read from a zip."""

  def __init__(self, file, storages):
    pickle.Unpickler.__init__(self, file)  # pylint: disable=non-parent-init-called
    self._storages, self._extra = storages, {}  # a legacy file holds tensors only

  def find_class(self, module, name):
    if module == "torch._utils" and name == "_rebuild_tensor":  # files from torch < 0.4
      return torch_pickle._rebuild_tensor  # pylint: disable=protected-access
    return super().find_class(module, name)

  def persistent_load(self, pid):
    _, key, _, view = _storage_pid(pid)
    storage = self._storages[key]
    if view is not None:  # (view key, offset, size) into the root storage
      storage = storage[int(view[1]):int(view[1]) + int(view[2])]
    return storage


class _Scan(_LegacyUnpickler):
  """First pass over the object: notes each storage's dtype and size, builds no tensor."""

  def __init__(self, file):
    super().__init__(file, None)
    self.found = {}

  def find_class(self, module, name):
    if module == "torch._utils" and name.startswith("_rebuild_"):
      super().find_class(module, name)  # still only the whitelisted ones
      return lambda *args: None
    return super().find_class(module, name)

  def persistent_load(self, pid):
    storage_type, key, numel, _ = _storage_pid(pid)
    self.found[key] = (np.dtype(storage_type.dtype), numel)


def _storage_pid(pid):
  # ('storage', storage type, key, location, element count, view metadata or None)
  if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
          and isinstance(pid[1], torch_pickle._StorageType)):  # pylint: disable=protected-access
    raise torch_pickle.CheckpointFormatError(f"unsupported persistent object {pid!r:.80}")
  return pid[1], pid[2], int(pid[4]), pid[5]


def load_legacy_torch_checkpoint(path):
  """Reads torch's legacy format: magic, protocol, sys info, the object, storage keys, storages.

  Each storage follows as an int64 element count and its raw little-endian bytes, so the object
  is read twice: once to learn the storages' dtypes, once more with them filled in.
  """
  try:
    with open(path, "rb") as f:
      if _Plain(f).load() != _LEGACY_MAGIC or _Plain(f).load() != _LEGACY_PROTOCOL:
        raise torch_pickle.CheckpointFormatError("not a torch.save checkpoint")
      info = _Plain(f).load()
      if not (isinstance(info, dict) and info.get("little_endian") is True):
        raise torch_pickle.CheckpointFormatError("big-endian or unknown legacy checkpoint")
      start = f.tell()
      scan = _Scan(f)
      scan.load()
      storages = {}
      for key in _Plain(f).load():
        dtype, numel = scan.found[key]
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        raw = f.read(numel * dtype.itemsize)
        if count != numel or len(raw) != numel * dtype.itemsize:
          raise torch_pickle.CheckpointFormatError(f"storage {key} is truncated")
        storages[key] = np.frombuffer(raw, dtype=dtype)
      f.seek(start)
      return _LegacyUnpickler(f, storages).load()
  except torch_pickle.CheckpointFormatError as e:
    raise torch_pickle.CheckpointFormatError(f"{path}: {e}") from None
  except (EOFError, KeyError, IndexError, pickle.UnpicklingError, ValueError, TypeError) as e:
    raise torch_pickle.CheckpointFormatError(
        f"{path}: truncated or corrupt legacy PyTorch checkpoint ({type(e).__name__}: {e})") from e
