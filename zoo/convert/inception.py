"""pytorch-fid's FID Inception weights -> models.perception.inception.InceptionV3.

`from_pretrained("inception_fid", checkpoint=PATH)`: PATH is `pt_inception-2015-12-05-6726825d.pth`
(WEIGHT_URL below, pytorch-fid's release; torch-fidelity's copy, `weights-inception-2015-12-05-
6726825d.pth`, carries the same hash) or a directory holding it. The file is a plain state dict
in the layout of torchvision's Inception3 without AuxLogits:
  {Conv2d_1a_3x3, ..., Mixed_7c.branch_pool}.conv.weight       bias-free Conv2d
  {...}.bn.{weight, bias, running_mean, running_var}           BatchNorm2d (eps 0.001)
  fc.weight [1008, 2048], fc.bias [1008]
Torch versions that track BatchNorm batches add `{...}.bn.num_batches_tracked` (a scalar that
eval mode never reads): those are dropped when present, after their shapes are checked.
The file may be in torch's legacy (pre-1.6) format, which zoo.convert.lpips reads.
"""
import numpy as np

from models.perception.inception import InceptionConfig
from zoo.convert import common, files, lpips
from zoo.convert.common import CONV2D, Rule, linear_rules

WEIGHT_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHT_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              f"{WEIGHT_FILE}")
STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
# The convs of each block type, in torchvision's names (our attributes have the same names).
BLOCK_CONVS = {
    "A": ("branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2",
          "branch3x3dbl_3", "branch_pool"),
    "B": ("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
    "C": ("branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1",
          "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"),
    "D": ("branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3",
          "branch7x7x3_4"),
    "E": ("branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1",
          "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"),
}
MIXED = {"Mixed_5b": "A", "Mixed_5c": "A", "Mixed_5d": "A", "Mixed_6a": "B", "Mixed_6b": "C",
         "Mixed_6c": "C", "Mixed_6d": "C", "Mixed_6e": "C", "Mixed_7a": "D", "Mixed_7b": "E",
         "Mixed_7c": "E"}


def _conv_bn(t: str, p: str) -> list[Rule]:
  """BasicConv2d `t` -> ConvBN `p`."""
  return [Rule(f"{t}.conv.weight", f"{p}.conv.kernel", CONV2D),
          Rule(f"{t}.bn.weight", f"{p}.bn.scale"), Rule(f"{t}.bn.bias", f"{p}.bn.bias"),
          Rule(f"{t}.bn.running_mean", f"{p}.bn.mean"),
          Rule(f"{t}.bn.running_var", f"{p}.bn.var")]


def conv_names() -> list[str]:
  """Every BasicConv2d of the network, in torch names (94 of them)."""
  return list(STEM) + [f"{block}.{conv}" for block, kind in MIXED.items()
                       for conv in BLOCK_CONVS[kind]]


def table(cfg: InceptionConfig = InceptionConfig()) -> list[Rule]:
  del cfg  # one architecture; num_classes only changes the fc shape, which the loader checks
  rules = []
  for name in conv_names():
    rules += _conv_bn(name, name.lower())  # Mixed_5b.branch1x1 -> mixed_5b.branch1x1
  return rules + linear_rules("fc", "fc")


def _check_running_var(state_dict, model_name):
  # A non-positive variance is no weight file's: rsqrt(var + 0.001) would be NaN or huge.
  bad = sorted(k for k, v in state_dict.items()
               if k.endswith(".running_var") and np.size(v) and float(np.min(v)) <= 0.0)
  if bad:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}: BatchNorm running_var not positive in "
        f"{', '.join(bad)}")


def load_state_dict(model, state_dict, *, model_name: str = "inception_fid"):
  counters = {k: v for k, v in state_dict.items() if k.endswith(".num_batches_tracked")}
  wrong = [f"{k}: shape {np.shape(v)}" for k, v in counters.items() if np.size(v) != 1]
  if wrong:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}: num_batches_tracked is not a scalar:\n  "
        + "\n  ".join(wrong))
  kept = {k: v for k, v in state_dict.items() if k not in counters}
  _check_running_var(kept, model_name)
  common.load_state_dict(model, kept, table(model.config), model_name=model_name)


def read_checkpoint(source, *, model_name: str = "inception_fid") -> dict:
  """{name: array} from pytorch-fid's weight file, or a directory holding it."""
  path = files.released_file(source, weight_file=WEIGHT_FILE, url=WEIGHT_URL,
                             model_name=model_name)
  return lpips.read_torch_file(path)
