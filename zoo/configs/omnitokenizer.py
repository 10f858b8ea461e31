"""OmniTokenizer (FoundationVision/OmniTokenizer): the released checkpoints as registered names.

Every release is a Lightning .ckpt on huggingface.co/Daniel0724/OmniTokenizer (RELEASED_FILES);
from_pretrained reads the architecture from its hyper-parameters, so the configs here are the
defaults of `zoo.create` (the published recipes: image-only stage with temporal patch 2 and
the relative-position bias, joint stages with temporal patch 4 and RoPE). `omnitokenizer_tiny`
(width 64, 4x4 patches, window 4, 256 codes) is the CPU variant of the tests and the tiny
recipe.
"""
import dataclasses

import ml_collections

from models.video.omnitokenizer import OmniTokenizerConfig
from zoo.configs.trainer_defaults import trainer_defaults

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


def get_config(arg: str | None = None):
  """Training config: `tiny` / `tiny_vae` (CPU: the built-in photos and clips mixed), or the
  official stages `image` (stage 1), `joint` (stage 2) and `vae` (stage 3).

  The official recipe (scripts/recons/train.sh): Adam betas (0.5, 0.9), gradient clip 1.0,
  cosine from lr 1e-3 (stage 1) / 5e-5 (later stages) to 5e-5 after 50k warmup steps, 500k
  steps on 32 GPUs (batch 8 images; stage 2/3: 4 clips + 8 images, alternating); loss =
  4 x L1 + 4 x LPIPS (one random frame per clip) + the codebook's commitment term (VQ) or
  1e-6 x the summed KL (VAE), plus a hinge PatchGAN (image) and 3-D PatchGAN (video) with
  4 x feature matching. Stage 1's --logitslaplace_weight 0.4 is inert in the official code
  (it applies only with an L2 reconstruction loss), so it is left out here. Stage 2 starts
  from stage 1 with temporal patch 4 and RoPE and trains at 0.5-1.25x the resolution.
  Deviations: the discriminators (and the feature-matching term) are not built in the zoo yet
  (gan.enabled False); the resolution scales resize with half-pixel bilinear, the official
  with align_corners=True; the zoo keeps an EMA of the weights.
  """
  name = {None: "tiny", "tiny": "tiny"}.get(arg, arg)
  recipes = {"tiny": "omnitokenizer_tiny", "tiny_vae": "omnitokenizer_tiny_vae",
             "image": "omnitokenizer_imagenet_only", "joint": "omnitokenizer_imagenet_k600",
             "vae": "omnitokenizer_imagenet_k600_vae"}
  if name not in recipes:
    raise ValueError(f"unknown OmniTokenizer config {arg!r}; choose from {sorted(recipes)}")
  tiny = name.startswith("tiny")
  c = trainer_defaults()
  c.model = recipes[name]
  c.recipe = "pixels"
  c.seed = 0
  c.data = "builtin:clips"  # the clips (folder:/path, tfds:ucf101, ...)
  c.image_data = "builtin:photos"  # the images (folder:/path, tfds:imagenet2012, ...)
  c.eval_data = "builtin:clips"
  c.image_eval_data = "builtin:photos"
  c.frame_num = 9 if tiny else 17
  c.frame_stride = 1
  # (image, video) batch weights; force_alternation: strictly image, clip, image, ...
  c.sample_ratio = (1.0, 0.0) if name == "image" else (1.0, 1.0)
  c.force_alternation = name != "image"
  c.resolution_scales = (0.5, 0.75, 1.0, 1.25) if name in ("joint", "vae") else (1.0,)
  c.batch_size = 8 if tiny else 256
  c.eval_batch_size = 8 if tiny else 16
  c.num_eval_clips = 14 if tiny else 500
  c.num_eval_images = 8 if tiny else 1_000
  c.total_steps = 600 if tiny else 500_000
  c.learning_rate = 2e-3 if tiny else (1e-3 if name == "image" else 5e-5)
  c.end_learning_rate = 5e-5
  c.warmup_steps = 20 if tiny else 50_000
  c.beta1, c.beta2 = 0.5, 0.9
  c.weight_decay = 0.0
  c.grad_clip_norm = 1.0
  c.ema_decay = 0.99 if tiny else 0.9999
  c.loss = ml_collections.ConfigDict(dict(
      pixel_l2=0.0, pixel_l1=4.0, quantizer=1.0, kl=1e-6,
      perceptual=0.0 if tiny else 4.0, perceptual_mode="lpips"))
  c.perceptual_checkpoints = ml_collections.ConfigDict(dict(lpips=""))
  c.perceptual_overrides = ml_collections.ConfigDict(dict(lpips={}))
  c.gan = ml_collections.ConfigDict(dict(enabled=False))
  c.log_every = 20
  c.eval_every = 200 if tiny else 5_000
  c.checkpoint_every = 200 if tiny else 5_000
  return c
