"""GPSToken (xtudbxk/GPSToken): the released tokenizers as registered names.

configs/gpstoken_{s64,m128,l256}.yaml: 30 conditional attention blocks of width 512, RoIs 8x8,
a 64x64 render grid (dmax 3) decoded by a taming CNN (ch 128, mult [1, 2, 4], 2 res blocks)
to 256 pixels; S64 / M128 carry 64 / 128 Gaussians with 16 features, L256 256 with 32.
L256 decodes larger images tile by tile, as the official inference does.

`gpstoken_tiny` (tile 64, render 16, width 64, 2 blocks) builds in well under a second for
CPU tests and the tiny training recipe: `python train.py --config zoo/configs/gpstoken.py:tiny`.
"""
import ml_collections

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


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config: `tiny` (CPU, the built-in photos) or a released name.

  The official recipe (train.py, configs/gpstoken_*.yaml, taming's VQLPIPSWithDiscriminator):
  Adam lr 5e-5 constant, betas (0.5, 0.9), no weight decay or clipping, batch 16 per GPU
  (8 GPUs), 1M steps; loss = mean squared error in [-1, 1] (pixel_l2 4 on [0, 1] images) +
  LPIPS + the FID perceptual loss (weight 1 each: "lpips+fid" at outer weight 2), hinge PatchGAN
  from step 600k with taming's adaptive weight x 0.3 on decoder.conv_out; EMA of the weights.
  Deviations: the zoo updates generator and discriminator in the same step (the official
  alternates them after disc_start) on TiTok's NLayer discriminator, not taming's BatchNorm one.
  """
  name = {None: "gpstoken_tiny", "tiny": "gpstoken_tiny"}.get(arg, arg)
  if name not in MODELS:
    raise ValueError(f"unknown GPSToken config {arg!r}; choose 'tiny' or one of {sorted(MODELS)}")
  tiny = name == "gpstoken_tiny"
  c = ml_collections.ConfigDict()
  c.model = name
  c.recipe = "pixels"
  c.seed = 0
  c.data = "builtin:photos"  # or tfds:imagenet2012, folder:/path/to/images
  c.eval_data = "builtin:photos"
  c.batch_size = 8 if tiny else 128
  c.eval_batch_size = 16 if tiny else 32
  c.num_eval_images = 32 if tiny else 10_000
  c.total_steps = 600 if tiny else 1_000_000
  c.learning_rate = 1e-3 if tiny else 5e-5
  c.end_learning_rate = c.learning_rate  # constant, as the official
  c.warmup_steps = 0
  c.beta1, c.beta2 = (0.9, 0.99) if tiny else (0.5, 0.9)
  c.weight_decay = 0.0
  c.grad_clip_norm = 0.0  # none
  c.ema_decay = 0.99 if tiny else 0.9999  # ema_pytorch's default beta
  c.loss = ml_collections.ConfigDict(dict(
      pixel_l2=4.0,  # (x - y)^2 in [-1, 1] = 4 (x - y)^2 in [0, 1]
      quantizer=0.0, kl=0.0,
      perceptual=0.0 if tiny else 2.0, perceptual_mode="lpips+fid"))
  # lpips: a directory with vgg16 + vgg.pth; fid: pt_inception-2015-12-05-6726825d.pth.
  c.perceptual_checkpoints = ml_collections.ConfigDict(dict(lpips="", fid=""))
  c.perceptual_overrides = ml_collections.ConfigDict(dict(lpips={}, fid={}))
  c.gan = ml_collections.ConfigDict(dict(
      enabled=True, discriminator_start=400 if tiny else 600_000, discriminator_factor=1.0,
      discriminator_weight=0.3, adaptive_weight_layer="decoder.conv_out.kernel",
      lecam_regularization_weight=0.0, lecam_ema_decay=0.999,
      learning_rate=c.learning_rate, hidden_channels=32 if tiny else 64,
      num_stages=2 if tiny else 3, blur_resample=False))
  c.frozen = ()
  c.init_from = ""
  c.pixel_decoder_from_teacher = False
  c.log_every = 20
  c.eval_every = 200 if tiny else 5_000
  c.checkpoint_every = 200 if tiny else 50_000
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.dtype = "float32"
  c.grad_accum_steps = 1
  c.kernel_impl = ""
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict({})
  c.data_workers = 0  # grain worker processes for the entropy initialisation
  c.objective = "pixels"
  c.teacher = ""
  c.teacher_checkpoint = ""
  c.teacher_overrides = ml_collections.ConfigDict({})
  return c
