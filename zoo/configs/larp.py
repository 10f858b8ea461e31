"""LARP (hywang66/LARP): the released tokenizer as a registered name, and its training recipe.

`larp_l_long` is hywang66/LARP-L-long-tokenizer (16x128^2 clips, 1024 tokens of an 8192-code
book, 12+12 ViT-B blocks, the GPT-C-S prior); from_pretrained reads the architecture from the
repo's config.json. `larp_tiny` (8x32^2 clips, 32 tokens, 2+2 blocks of width 64, a 2-layer
prior) is the CPU variant of the tests and the tiny recipe.
"""
from models.video.larp import LARPConfig

MODELS = {
    "larp_l_long": (LARPConfig(), "hywang66/LARP-L-long-tokenizer"),
    "larp_tiny": (LARPConfig(input_size=32, frame_num=8, num_tokens=32, encoder_width=64,
                             encoder_heads=4, encoder_depth=2, decoder_width=64, decoder_heads=4,
                             decoder_depth=2, bottleneck_dim=8, codebook_size=256,
                             prior="gptc-tiny"), None),
}
