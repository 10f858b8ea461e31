"""VAT-style variational 3D tokenizers (models/threed/vat.py): registered sizes, no released
weights (VAT published none; these train with the zoo).

  vat_b256  256 tokens at scales 1, 4, 16, 64, 256 of a 4096-code book: 341 ids x 12 bits
            = 511.5 bytes a shape (the paper's "512-Byte"), width 512, 8 + 8 blocks
  vat_l512  512 tokens at scales 1, 4, 16, 64, 128, 256, 512 of 4096 codes: 981 ids, 1,471.5
            bytes, width 768, 12 + 12 blocks, 128^2 triplanes
  vat_tiny  16 tokens at scales 1, 4, 16 of 64 codes (15.75 bytes), width 32: CPU tests
"""
from models.threed.vat import VATConfig

MODELS = {
    "vat_b256": (VATConfig(), None),
    "vat_l512": (VATConfig(num_tokens=512, width=768, heads=12, encoder_depth=12,
                           decoder_depth=12, scales=(1, 4, 16, 64, 128, 256, 512),
                           triplane_tokens=32, triplane_upsample=4), None),
    "vat_tiny": (VATConfig(num_inputs=128, num_tokens=16, width=32, heads=2, dim_head=16,
                           encoder_depth=1, decoder_depth=1, latent_dim=4, scales=(1, 4, 16),
                           codebook_size=64, triplane_tokens=4, triplane_upsample=2,
                           triplane_channels=8, head_hidden=32), None),
}
