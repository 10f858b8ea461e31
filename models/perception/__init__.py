"""Frozen networks used by losses and metrics: LPIPS (VGG16, AlexNet), ConvNeXt (ImageNet
logits) and the FID InceptionV3."""
from models.perception.alex_lpips import AlexLPIPS
from models.perception.convnext import ConvNeXt, ConvNeXtConfig
from models.perception.inception import InceptionConfig, InceptionV3
from models.perception.vgg_lpips import LPIPS, LPIPSConfig

__all__ = ["AlexLPIPS", "ConvNeXt", "ConvNeXtConfig", "InceptionConfig", "InceptionV3", "LPIPS",
           "LPIPSConfig"]
