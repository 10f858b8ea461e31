"""OmniTokenizer (FoundationVision/OmniTokenizer): the released checkpoints as registered names.

Every release is a Lightning .ckpt on huggingface.co/Daniel0724/OmniTokenizer (RELEASED_FILES);
from_pretrained reads the architecture from its hyper-parameters, so the configs here are the
defaults of `zoo.create` (the published recipes: image-only stage with temporal patch 2 and
the relative-position bias, joint stages with temporal patch 4 and RoPE). `omnitokenizer_tiny`
(width 64, 4x4 patches, window 4, 256 codes) is the CPU variant of the tests and the tiny
recipe.
"""
import dataclasses

from models.video.omnitokenizer import OmniTokenizerConfig

HF_REPO = "Daniel0724/OmniTokenizer"
_IMAGE_STAGE = OmniTokenizerConfig(temporal_patch_size=2, spatial_pos="rel")
_JOINT = OmniTokenizerConfig()
_VAE = dataclasses.replace(_JOINT, use_vae=True)
RELEASED_FILES = {
    "omnitokenizer_imagenet_only": ("imagenet_only.ckpt", _IMAGE_STAGE),
    "omnitokenizer_celebahq": ("celebahq.ckpt", _IMAGE_STAGE),
    "omnitokenizer_ffhq": ("ffhq.ckpt", _IMAGE_STAGE),
    "omnitokenizer_imagenet_ucf": ("imagenet_ucf.ckpt", _JOINT),
    "omnitokenizer_imagenet_k600": ("imagenet_k600.ckpt", _JOINT),
    "omnitokenizer_imagenet_mit": ("imagenet_mit.ckpt", _JOINT),
    "omnitokenizer_imagenet_sthv2": ("imagenet_sthv2.ckpt", _JOINT),
    "omnitokenizer_celebahq_ucf": ("celebahq_ucf.ckpt", _JOINT),
    "omnitokenizer_celebahq_k600": ("celebahq_k600.ckpt", _JOINT),
    "omnitokenizer_ffhq_ucf": ("ffhq_ucf.ckpt", _JOINT),
    "omnitokenizer_ffhq_k600": ("ffhq_k600.ckpt", _JOINT),
    "omnitokenizer_imagenet_ucf_vae": ("imagenet_ucf_vae.ckpt", _VAE),
    "omnitokenizer_imagenet_k600_vae": ("imagenet_k600_vae.ckpt", _VAE),
}
TINY = OmniTokenizerConfig(resolution=32, patch_size=4, width=64, heads=2, dim_head=32,
                           window_size=4, temporal_depth=2, codebook_size=256)
MODELS = {name: (cfg, HF_REPO) for name, (_, cfg) in RELEASED_FILES.items()}
MODELS["omnitokenizer_tiny"] = (TINY, None)
MODELS["omnitokenizer_tiny_vae"] = (dataclasses.replace(TINY, use_vae=True), None)
