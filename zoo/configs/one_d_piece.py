"""One-D-Piece: TiTok with 256 tokens and Tail Token Drop (turingmotors/One-D-Piece).

The released tokenizers are legacy TiTok models (VQ 4096 x 12, l2-normalised, MaskGIT pixel
decoder) in TiTok's key layout; the one change is training: the decoder sees only the first
k ~ U{1..256} tokens (one k per batch), so `decode(ids[:, :k])` is useful for every k.
Training recipes are TiTok's two stages (configs/training/stage{1,2}/one-d-piece_*.yaml use
TiTok's values: stage 1 1M steps, lr 1e-4, warmup 10k, cosine to 1e-5; stage 2 500k steps,
ConvNeXt perceptual 0.1, GAN 0.01 from 20k, LeCam 0.001).

  python train.py --config zoo/configs/one_d_piece.py:tiny
"""
import ml_collections

from models.image.titok import TiTokConfig
from zoo.configs import titok

_LEGACY_256 = dict(num_latent_tokens=256, codebook_size=4096, token_size=12, use_l2_norm=True,
                   is_legacy=True, finetune_decoder=True, tail_token_drop=True)

MODELS = {
    # HF repos from the official README (rFID 1.48 / 1.11 / 1.08 with all 256 tokens).
    "one_d_piece_s256": (TiTokConfig(encoder_size="small", decoder_size="small", **_LEGACY_256),
                         "turing-motors/One-D-Piece-S-256"),
    "one_d_piece_b256": (TiTokConfig(encoder_size="base", decoder_size="base", **_LEGACY_256),
                         "turing-motors/One-D-Piece-B-256"),
    "one_d_piece_l256": (TiTokConfig(encoder_size="large", decoder_size="large", **_LEGACY_256),
                         "turing-motors/One-D-Piece-L-256"),
    # CPU-sized: 64 px, 2-layer ViTs, 32 tokens, RGB head (and the stage-1 logits head).
    # No commitment term: from scratch it pulls every image's tokens onto the same few codes
    # (at init the encoder's outputs vary 5x more across token positions than across images).
    "one_d_piece_tiny": (TiTokConfig(
        image_size=64, patch_size=8, encoder_size="tiny", decoder_size="tiny",
        num_latent_tokens=32, codebook_size=1024, token_size=16, use_l2_norm=True,
        commitment_cost=0.0, is_legacy=False, finetune_decoder=False, tail_token_drop=True),
                         None),
    "one_d_piece_tiny_stage1": (TiTokConfig(
        image_size=64, patch_size=16, encoder_size="tiny", decoder_size="tiny",
        num_latent_tokens=32, codebook_size=1024, token_size=12, use_l2_norm=True,
        is_legacy=True, finetune_decoder=False, tail_token_drop=True), None),
}
_TINY_ALIASES = {"tiny": "one_d_piece_tiny", "tiny_stage1": "one_d_piece_tiny_stage1",
                 "tiny_stage2": "one_d_piece_tiny_stage1", "tiny_single_stage": "one_d_piece_tiny"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config for `arg`:

    tiny, tiny_stage1, tiny_stage2, tiny_single_stage   CPU-sized recipes
    one_d_piece_{s256,b256,l256}_stage1   proxy codes of the frozen MaskGIT-VQGAN
    one_d_piece_{s256,b256,l256}_stage2   frozen encoder + quantizer, pixel decoders trained
  """
  config = titok.build_config(arg or "tiny", MODELS, _TINY_ALIASES)
  if config.model == "one_d_piece_tiny" and config.recipe == "pixels":
    # Measured on the built-in photos: at lr 1e-3 (the tiny TiTok's) the VQ stays collapsed
    # on a handful of codes for 600+ steps; at 3e-4 with a light codebook loss the tokens are
    # used within a few hundred steps.
    config.update(learning_rate=3e-4, end_learning_rate=3e-5, ema_decay=0.99)
    config.loss.quantizer = 0.1
  return config
