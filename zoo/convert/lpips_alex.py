"""LPIPS-Alex weights from two released files -> models.perception.alex_lpips.AlexLPIPS.

`from_pretrained("lpips_alex", checkpoint=DIR)`, where DIR holds both files unrenamed:
  alexnet-owt-7be5be79.pth  the trunk: torchvision AlexNet_Weights.IMAGENET1K_V1,
                            https://download.pytorch.org/models/alexnet-owt-7be5be79.pth
  alex.pth                  the lin layers: `lpips/weights/v0.1/alex.pth` inside the `lpips` wheel
The trunk file also holds AlexNet's fully connected head (`classifier.*`, 57M values), which
LPIPS never uses: those names are dropped after their shapes are checked. Reading (legacy torch
format included) and the head check are zoo/convert/lpips.py's.
"""
from models.perception.alex_lpips import ALEXNET_CONVS
from models.perception.lpips_head import LPIPSConfig
from zoo.convert import lpips
from zoo.convert.common import CONV1X1_AS_DENSE, CONV2D, Rule

TRUNK_FILE = "alexnet-owt-7be5be79.pth"
LIN_FILE = "alex.pth"
TRUNK_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
# Index of each conv in torchvision's `alexnet().features` (ReLU and MaxPool fill the gaps).
ALEXNET_CONV_INDEX = (0, 3, 6, 8, 10)
# In the trunk file but not in LPIPS: AlexNet's classifier (Dropout, Linear, ReLU, ... ).
DROPPED = {"classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
           "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
           "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}


def table(cfg: LPIPSConfig = LPIPSConfig(trunk="alexnet")) -> list[Rule]:
  del cfg  # one architecture
  rules = []
  for i, index in enumerate(ALEXNET_CONV_INDEX):
    rules += [Rule(f"features.{index}.weight", f"net.convs.{i}.kernel", CONV2D),
              Rule(f"features.{index}.bias", f"net.convs.{i}.bias")]
  # NetLinLayer is Sequential(Dropout, Conv2d 1x1 no bias): the conv is `model.1`.
  rules += [Rule(f"lin{k}.model.1.weight", f"lin.{k}.kernel", CONV1X1_AS_DENSE)
            for k in range(len(ALEXNET_CONVS))]
  return rules


def load_state_dict(model, state_dict, *, model_name: str = "lpips_alex"):
  lpips.load_without_head(model, state_dict, table(model.config), DROPPED, model_name=model_name)


def read_checkpoint(source, *, model_name: str = "lpips_alex") -> dict:
  """The merged {name: array} of the trunk and lin files in directory `source`."""
  return lpips.read_trunk_and_lin(source, TRUNK_FILE, TRUNK_URL, LIN_FILE, model_name=model_name)
