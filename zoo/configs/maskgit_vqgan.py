"""MaskGIT-VQGAN f16: the frozen teacher for TiTok stage 1 and the legacy pixel decoder.

Weights: `maskgit-vqgan-imagenet-f16-256.bin` in the HF repo fun-research/TiTok.
"""
from models.image.maskgit_vqgan import MaskGitVQGANConfig

MODELS = {
    "maskgit_vqgan_f16": (MaskGitVQGANConfig(), "fun-research/TiTok"),
}
