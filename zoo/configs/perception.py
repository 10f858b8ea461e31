"""Frozen networks for perceptual losses and metrics; not on HF (see their converters for files).

  lpips_vgg            LPIPS v0.1, VGG16 trunk (zoo/convert/lpips.py: two files in one directory)
  lpips_alex           LPIPS v0.1, AlexNet trunk (zoo/convert/lpips_alex.py: alexnet-owt-7be5be79.pth
                       + alex.pth in one directory)
  convnext_s_imagenet  torchvision convnext_small IMAGENET1K_V1 (zoo/convert/convnext.py)
  inception_fid        the FID InceptionV3 of pytorch-fid / torch-fidelity,
                       pt_inception-2015-12-05-6726825d.pth (zoo/convert/inception.py)
  i3d_kinetics400      the FVD I3D of VideoGPT / TATS / OmniTokenizer, i3d_pretrained_400.pt
                       (zoo/convert/i3d.py)
"""
from models.perception.convnext import ConvNeXtConfig
from models.perception.i3d import I3DConfig
from models.perception.inception import InceptionConfig
from models.perception.vgg_lpips import LPIPSConfig

MODELS = {
    "lpips_vgg": (LPIPSConfig(), None),
    "lpips_alex": (LPIPSConfig(trunk="alexnet"), None),
    "convnext_s_imagenet": (ConvNeXtConfig(), None),
    "inception_fid": (InceptionConfig(), None),
    "i3d_kinetics400": (I3DConfig(), None),
}
