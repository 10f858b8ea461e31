"""LARP (hywang66/LARP): the released tokenizer as a registered name, and its training recipe.

`larp_l_long` is hywang66/LARP-L-long-tokenizer (16x128^2 clips, 1024 tokens of an 8192-code
book, 12+12 ViT-B blocks, the GPT-C-S prior); from_pretrained reads the architecture from the
repo's config.json. `larp_tiny` (8x32^2 clips, 32 tokens, 2+2 blocks of width 64, a 2-layer
prior; its latent queries start at std 1 rather than 0.02: from 0.02 two blocks map every clip
to the same few codes) is the CPU variant of the tests and the tiny recipe:
`python train.py --config zoo/configs/larp.py:tiny`.
"""
import ml_collections

from models.video.larp import LARPConfig
from zoo.configs.trainer_defaults import trainer_defaults

MODELS = {
    "larp_l_long": (LARPConfig(), "hywang66/LARP-L-long-tokenizer"),
    "larp_tiny": (LARPConfig(input_size=32, frame_num=8, num_tokens=32, encoder_width=64,
                             encoder_heads=4, encoder_depth=2, decoder_width=64, decoder_heads=4,
                             decoder_depth=2, bottleneck_dim=8, codebook_size=256,
                             prior="gptc-tiny", query_init_std=1.0), None),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config: `tiny` (CPU, the built-in clips) or `larp_l_long` (the reproduce recipe).

  The official recipe (scripts/train_larp_tokenizer_reproduce.sh over cfgs/larp_tokenizer.yaml):
  Adam lr 1e-4, betas (0.5, 0.9), no weight decay or clipping, cosine to 1e-6 after 8 warmup
  epochs of 150 at batch 128 on Kinetics-600 + UCF101 train (~3,070 steps an epoch); the prior
  at 50x the learning rate; loss = L1 + LPIPS-VGG per frame + 0.1 quantizer loss + 0.06 prior
  cross-entropy + 0.3 x the non-saturating GAN term of a 12-layer, width-512 transformer video
  discriminator (Adam lr 3e-5, one-sided label noise, LeCam 0.001, updated every 5th step).
  Deviations: the zoo keeps an EMA of the weights (the official evaluates the raw ones, as
  eval/ here does with --weights params), and its prior has no attention dropout.
  """
  name = {None: "larp_tiny", "tiny": "larp_tiny"}.get(arg, arg)
  if name not in MODELS:
    raise ValueError(f"unknown LARP config {arg!r}; choose 'tiny' or one of {sorted(MODELS)}")
  tiny = name == "larp_tiny"
  steps_per_epoch = 3_070
  c = trainer_defaults()
  c.model = name
  c.recipe = "pixels"
  c.seed = 0
  c.data = "builtin:clips"  # or tfds:ucf101, folder:/path/to/videos
  c.eval_data = "builtin:clips"
  c.frame_stride = 1  # native frame rate, as the official loader
  c.batch_size = 8 if tiny else 128
  c.eval_batch_size = 16 if tiny else 32
  c.num_eval_clips = 14 if tiny else 1_000  # tiny: every eval window of builtin:clips
  c.total_steps = 4_000 if tiny else 150 * steps_per_epoch
  c.learning_rate = 1e-3 if tiny else 1e-4
  c.end_learning_rate = 0.01 * c.learning_rate  # min_lr_mult 0.01
  c.warmup_steps = 20 if tiny else 8 * steps_per_epoch
  c.beta1, c.beta2 = (0.9, 0.99) if tiny else (0.5, 0.9)
  c.weight_decay = 0.0
  c.grad_clip_norm = 0.0  # clip_grad_max_norm 0: none
  c.lr_multipliers = ml_collections.ConfigDict(dict(prior_model=1.0 if tiny else 50.0))
  c.ema_decay = 0.99 if tiny else 0.9999
  c.loss = ml_collections.ConfigDict(dict(
      pixel_l2=0.0, pixel_l1=1.0, quantizer=0.1, latent_ce=0.06, kl=0.0,
      perceptual=0.0 if tiny else 1.0, perceptual_mode="lpips"))
  # lpips: a directory with vgg16 + vgg.pth (zoo/convert/lpips.py).
  c.perceptual_checkpoints = ml_collections.ConfigDict(dict(lpips=""))
  c.perceptual_overrides = ml_collections.ConfigDict(dict(lpips={}))
  c.gan = ml_collections.ConfigDict(dict(
      enabled=True, discriminator="video_transformer",
      discriminator_start=3_000 if tiny else 0,
      discriminator_weight=0.3, update_every=5, lecam_regularization_weight=0.001,
      lecam_ema_decay=0.999, learning_rate=1e-3 if tiny else 3e-5, temporal_patch_size=4,
      patch_size=8, width=32 if tiny else 512, num_heads=2 if tiny else 8,
      depth=1 if tiny else 12))
  c.log_every = 20
  c.eval_every = 1_000 if tiny else 3_070
  c.checkpoint_every = 1_000 if tiny else 3_070
  return c
