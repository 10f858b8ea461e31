"""Frozen networks used by losses and metrics: LPIPS-VGG16 and ConvNeXt (ImageNet logits)."""
from models.perception.convnext import ConvNeXt, ConvNeXtConfig
from models.perception.vgg_lpips import LPIPS, LPIPSConfig

__all__ = ["ConvNeXt", "ConvNeXtConfig", "LPIPS", "LPIPSConfig"]
