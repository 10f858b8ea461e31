"""The KL VAEs FlexTok runs on (diffusers AutoencoderKL, f8), and a tiny CPU variant.

Released: EPFL-VILAB/flextok_vae_c{4,8,16} (diffusion_pytorch_model.safetensors + config.json),
architecture = FlexTok's VAE_BASE_CFG (flextok/vae_wrapper.py): block_out_channels
[128, 256, 512, 512], 2 layers per block, 32 groups. Their scaling factors could not be
verified offline (config.json was not readable from here), so they are left None and
`zoo.from_pretrained` takes `scaling_factor` from the repo's config.json; pass
scaling_factor=... to override (FlexTok's wrapper also prefers an explicit value).
"""
from models.image.kl_vae import KLVAEConfig

MODELS = {
    "flextok_vae_c4": (KLVAEConfig(latent_channels=4), "EPFL-VILAB/flextok_vae_c4"),
    "flextok_vae_c8": (KLVAEConfig(latent_channels=8), "EPFL-VILAB/flextok_vae_c8"),
    "flextok_vae_c16": (KLVAEConfig(latent_channels=16), "EPFL-VILAB/flextok_vae_c16"),
    # f2, 2 levels, 1 resnet per level: builds and runs in well under a second on CPU.
    "kl_vae_tiny": (KLVAEConfig(latent_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, norm_num_groups=8, scaling_factor=1.0,
                                image_size=32), None),
}
