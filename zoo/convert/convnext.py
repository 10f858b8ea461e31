"""torchvision ConvNeXt state dicts -> models.perception.convnext.ConvNeXt.

`from_pretrained("convnext_s_imagenet", checkpoint=PATH)`: PATH is torchvision's
`convnext_small-0c510722.pth` (ConvNeXt_Small_Weights.IMAGENET1K_V1,
https://download.pytorch.org/models/convnext_small-0c510722.pth) or a directory holding it.
torchvision's `features` interleaves stages and downsampling layers:
  features.0              stem: 0 = Conv2d 4x4/4, 1 = LayerNorm2d
  features.{2s+1}.{j}     stage s, block j: layer_scale [C, 1, 1]; block.0 depthwise Conv2d 7x7,
                          block.2 LayerNorm, block.3 / block.5 Linear (1 and 4 are Permute, GELU)
  features.{2s}           s >= 1, before stage s: 0 = LayerNorm2d, 1 = Conv2d 2x2/2
  classifier              0 = LayerNorm2d, 1 = Flatten, 2 = Linear
"""

from models.perception.convnext import ConvNeXtConfig
from zoo.convert import common, files
from zoo.convert.common import CONV2D, Rule, Transform, linear_rules, norm_rules

WEIGHT_FILE = "convnext_small-0c510722.pth"
WEIGHT_URL = f"https://download.pytorch.org/models/{WEIGHT_FILE}"
# layer_scale is stored as [C, 1, 1] to broadcast over NCHW.
LAYER_SCALE = Transform("layer_scale", lambda a: a.reshape(a.shape[0]), lambda s: (s[0], 1, 1))


def _conv(t, p):
  return [Rule(f"{t}.weight", f"{p}.kernel", CONV2D), Rule(f"{t}.bias", f"{p}.bias")]


def table(cfg: ConvNeXtConfig) -> list[Rule]:
  rules = _conv("features.0.0", "stem_conv") + norm_rules("features.0.1", "stem_norm")
  for s, depth in enumerate(cfg.depths):
    if s:
      rules += norm_rules(f"features.{2 * s}.0", f"downsample.{s - 1}.norm")
      rules += _conv(f"features.{2 * s}.1", f"downsample.{s - 1}.conv")
    for j in range(depth):
      t, p = f"features.{2 * s + 1}.{j}", f"stages.{s}.{j}"
      rules += [Rule(f"{t}.layer_scale", f"{p}.layer_scale", LAYER_SCALE)]
      rules += _conv(f"{t}.block.0", f"{p}.dwconv") + norm_rules(f"{t}.block.2", f"{p}.norm")
      rules += linear_rules(f"{t}.block.3", f"{p}.fc1") + linear_rules(f"{t}.block.5", f"{p}.fc2")
  return rules + norm_rules("classifier.0", "head_norm") + linear_rules("classifier.2", "head")


def load_state_dict(model, state_dict, *, model_name: str = "convnext_s_imagenet"):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def read_checkpoint(source, *, model_name: str = "convnext_s_imagenet") -> dict:
  """{name: array} from torchvision's weight file, or a directory holding it."""
  return files.read_file(files.released_file(source, weight_file=WEIGHT_FILE, url=WEIGHT_URL,
                                             model_name=model_name))
