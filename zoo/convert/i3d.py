"""The FVD I3D weights -> models.perception.i3d.I3D.

`from_pretrained("i3d_kinetics400", checkpoint=PATH)`: PATH is VideoGPT / TATS / OmniTokenizer's
`i3d_pretrained_400.pt` (a plain state dict of their pytorch_i3d.InceptionI3d), or a directory
holding it. Its keys: `{unit}.conv3d.weight` (bias-free Conv3d), `{unit}.bn.{weight, bias,
running_mean, running_var}` (+ `num_batches_tracked`, dropped after a shape check) for every
Unit3D, and `logits.conv3d.{weight, bias}`. Read with the zoo's restricted unpickler: nothing
in the file is executed.
"""
import numpy as np

from models.perception.i3d import unit_names
from zoo.convert import common, files, lpips
from zoo.convert.common import CONV3D, Rule

WEIGHT_FILE = "i3d_pretrained_400.pt"
# Where the file is published: beside the code that uses it (a Git LFS object).
WEIGHT_URL = ("the i3d_pretrained_400.pt of github.com/FoundationVision/OmniTokenizer "
              "(OmniTokenizer/fvd/) or of VideoGPT / TATS")


def _unit(name: str) -> list[Rule]:
  return [Rule(f"{name}.conv3d.weight", f"{name}.conv3d.kernel", CONV3D),
          Rule(f"{name}.bn.weight", f"{name}.bn.scale"), Rule(f"{name}.bn.bias", f"{name}.bn.bias"),
          Rule(f"{name}.bn.running_mean", f"{name}.bn.mean"),
          Rule(f"{name}.bn.running_var", f"{name}.bn.var")]


def table(cfg=None) -> list[Rule]:
  del cfg
  rules = [r for name in unit_names() for r in _unit(name)]
  return rules + [Rule("logits.conv3d.weight", "logits.conv3d.kernel", CONV3D),
                  Rule("logits.conv3d.bias", "logits.conv3d.bias")]


def load_state_dict(model, state_dict, *, model_name: str = "i3d_kinetics400"):
  counters = {k: v for k, v in state_dict.items() if k.endswith(".num_batches_tracked")}
  wrong = [f"{k}: shape {np.shape(v)}" for k, v in counters.items() if np.size(v) != 1]
  bad_var = sorted(k for k, v in state_dict.items()
                   if k.endswith(".running_var") and np.size(v) and float(np.min(v)) < 0.0)
  if wrong or bad_var:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(
            wrong + [f"{k}: negative BatchNorm variance" for k in bad_var]))
  kept = {k: v for k, v in state_dict.items() if k not in counters}
  common.load_state_dict(model, kept, table(), model_name=model_name)


def read_checkpoint(source, *, model_name: str = "i3d_kinetics400") -> dict:
  path = files.released_file(source, weight_file=WEIGHT_FILE, url=WEIGHT_URL,
                             model_name=model_name)
  return lpips.read_torch_file(path)
