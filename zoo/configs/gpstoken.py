"""GPSToken (xtudbxk/GPSToken): the released tokenizers as registered names.

configs/gpstoken_{s64,m128,l256}.yaml: 30 conditional attention blocks of width 512, RoIs 8x8,
a 64x64 render grid (dmax 3) decoded by a taming CNN (ch 128, mult [1, 2, 4], 2 res blocks)
to 256 pixels; S64 / M128 carry 64 / 128 Gaussians with 16 features, L256 256 with 32.
L256 decodes larger images tile by tile, as the official inference does.

`gpstoken_tiny` (tile 64, render 16, width 64, 2 blocks) builds in well under a second for
CPU tests and the tiny training recipe (zoo/configs/gpstoken_train.py).
"""
from models.image.gpstoken import GPSTokenConfig

MODELS = {
    "gpstoken_s64": (GPSTokenConfig(num_gaussians=64, feature_dim=16), None),
    "gpstoken_m128": (GPSTokenConfig(num_gaussians=128, feature_dim=16), None),
    "gpstoken_l256": (GPSTokenConfig(num_gaussians=256, feature_dim=32,
                                     decode_tiles_separately=True), None),
    "gpstoken_tiny": (GPSTokenConfig(num_gaussians=16, feature_dim=4, width=64, depth=2,
                                     cond_channels=32, render_size=16, tile_size=64,
                                     decoder_channels=32, decoder_res_blocks=1, norm_groups=8),
                      None),
}
