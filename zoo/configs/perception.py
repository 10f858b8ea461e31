"""Frozen networks for perceptual losses and metrics; not on HF (see their converters for files).

  lpips_vgg            LPIPS v0.1, VGG16 trunk (zoo/convert/lpips.py: two files in one directory)
  convnext_s_imagenet  torchvision convnext_small IMAGENET1K_V1 (zoo/convert/convnext.py)
"""
from models.perception.convnext import ConvNeXtConfig
from models.perception.vgg_lpips import LPIPSConfig

MODELS = {
    "lpips_vgg": (LPIPSConfig(), None),
    "convnext_s_imagenet": (ConvNeXtConfig(), None),
}
