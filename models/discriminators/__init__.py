"""Discriminators for adversarial tokenizer training."""
from models.discriminators.nlayer import NLayerDiscriminator, NLayerDiscriminatorConfig

__all__ = ["NLayerDiscriminator", "NLayerDiscriminatorConfig"]
