"""FlexTok: the released tokenizers as registered names, and training recipes.

`python train.py --config zoo/configs/flextok.py:tiny` trains the tiny pixel-space FlexTok
(no VAE) on the built-in photos with the rectified-flow loss.

What is verified about the releases (README, HF pages, third-party copies of the config):
names, encoder/decoder depths (the dNN in the name), 256 registers, FSQ [8,8,8,5,5,5], f8 VAE
latents patchified 2x2 (16x16 patches at 256 px), sin-cos posembs, the encoder's
"causal_last" register mask, head_dim 64 (so width = 64 x depth: d18 -> 1152, the value a
third-party copy of the d18 encoder config shows). NOT verified offline, and taken from the
code's defaults or the paper's description: the VAE channel count (16 here), the decoder
mask ("full"), the AdaLN expansion 2 with a modulated head, the zero null condition, the
nested-dropout size mode, max_timestep 1.0, the VAE scaling factor. The checkpoint header
carries the true values: load with `zoo.convert.flextok.from_checkpoint(path)` (or
`zoo.from_pretrained` once the registry has the `config_from_checkpoint` hook), which builds
the config from the header.
"""
import dataclasses

import ml_collections

from models.image.flextok import FlexTokConfig

try:  # the VAE is ported in its own module
  from models.image.kl_vae import KLVAEConfig
  _VAE16 = KLVAEConfig(latent_channels=16)
except ImportError:  # pragma: no cover - latent-space configs only
  _VAE16 = None

_RELEASED = dict(image_size=256, vae=_VAE16, latent_channels=16, downsample=8, patch_size=2,
                 head_dim=64, num_registers=256, fsq_levels=(8, 8, 8, 5, 5, 5),
                 enc_mask_mode="causal_last", dec_mask_mode="full", adaln_expansion=2,
                 nullcond="zero", keep_k_mode="pow2", max_timestep=1.0, guidance_scale=7.5,
                 use_apg=True, num_steps=25)


def _released(enc_depth: int, dec_depth: int) -> FlexTokConfig:
  return FlexTokConfig(enc_dim=64 * enc_depth, enc_depth=enc_depth, dec_dim=64 * dec_depth,
                       dec_depth=dec_depth, **_RELEASED)


MODELS = {
    "flextok_d12_d12_in1k": (_released(12, 12), "EPFL-VILAB/flextok_d12_d12_in1k"),
    "flextok_d18_d18_in1k": (_released(18, 18), "EPFL-VILAB/flextok_d18_d18_in1k"),
    "flextok_d18_d28_in1k": (_released(18, 28), "EPFL-VILAB/flextok_d18_d28_in1k"),
    "flextok_d18_d28_dfn": (_released(18, 28), "EPFL-VILAB/flextok_d18_d28_dfn"),
    # Pixel space, no VAE: 64 px, 8x8 patches of 8 px, 2-layer trunks, 32 registers.
    "flextok_tiny": (FlexTokConfig(
        image_size=64, vae=None, latent_channels=3, downsample=1, patch_size=8, enc_dim=64,
        enc_depth=2, dec_dim=128, dec_depth=2, head_dim=32, num_registers=32,
        fsq_levels=(8, 5, 5, 5), enc_mask_mode="causal_last", dec_mask_mode="full",
        nullcond="learned", cfg_dropout_p=0.1, keep_k_mode="pow2", max_timestep=1.0,
        guidance_scale=1.0, use_apg=False, num_steps=10, eval_num_steps=10), None),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config for `arg`: `tiny` (CPU) or a released name (FlexTok's published recipe
  is not in the repo (issue #2); the paper's setup is approximated: AdamW, batch 256 at 256 px
  on frozen VAE latents, flow loss only, REPA not implemented)."""
  name = {"tiny": "flextok_tiny", None: "flextok_tiny"}.get(arg, arg)
  if name not in MODELS:
    raise ValueError(f"unknown FlexTok config {arg!r}; choose 'tiny' or one of {sorted(MODELS)}")
  tiny = MODELS[name][0].image_size <= 64
  c = ml_collections.ConfigDict()
  c.model = name
  c.recipe = "flow"
  c.seed = 0
  c.data = "builtin:photos"
  c.eval_data = "builtin:photos"
  c.batch_size = 16 if tiny else 256
  c.eval_batch_size = 16 if tiny else 32
  c.num_eval_images = 32 if tiny else 10_000
  c.total_steps = 400 if tiny else 1_000_000
  c.learning_rate = 3e-4 if tiny else 1e-4
  c.end_learning_rate = 3e-5 if tiny else 1e-5
  c.warmup_steps = 20 if tiny else 10_000
  c.beta1, c.beta2 = 0.9, 0.99
  c.weight_decay = 0.05 if not tiny else 1e-4
  c.grad_clip_norm = 1.0
  c.ema_decay = 0.99 if tiny else 0.999  # a short CPU run: the EMA must follow it
  # The rectified-flow loss is the model's own (`out["losses"]["flow"]`); no pixel L2.
  c.loss = ml_collections.ConfigDict(dict(
      pixel_l2=0.0, flow=1.0, quantizer=0.0, kl=0.0, perceptual=0.0,
      perceptual_mode="convnext_s"))
  c.perceptual_checkpoints = ml_collections.ConfigDict(dict(lpips="", convnext=""))
  c.perceptual_overrides = ml_collections.ConfigDict(dict(lpips={}, convnext={}))
  c.gan = ml_collections.ConfigDict(dict(
      enabled=False, discriminator_start=0, discriminator_factor=1.0, discriminator_weight=0.0,
      lecam_regularization_weight=0.0, lecam_ema_decay=0.999, learning_rate=1e-4,
      hidden_channels=128, num_stages=3, blur_resample=True))
  # The VAE is frozen (FlexTok encodes latents under no_grad); nothing else is.
  c.frozen = () if tiny or MODELS[name][0].vae is None else ("vae",)
  c.init_from = ""
  c.pixel_decoder_from_teacher = False
  c.log_every = 20
  c.eval_every = 200 if tiny else 10_000
  c.checkpoint_every = 100 if tiny else 10_000
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.dtype = "float32"
  c.grad_accum_steps = 1
  c.kernel_impl = ""
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict(dict(remat=False))
  if not tiny:
    c.model_overrides.update(drop_quant_p=0.0, cfg_dropout_p=0.1)
  c.objective = "pixels"
  c.teacher = ""
  c.teacher_checkpoint = ""
  c.teacher_overrides = ml_collections.ConfigDict({})
  return c


def released_names() -> list[str]:
  return [n for n, (cfg, repo) in MODELS.items() if repo]


def with_header(name: str, header_cfg: FlexTokConfig) -> FlexTokConfig:
  """The registered config with a header's architecture (keeps the decode defaults)."""
  base = MODELS[name][0]
  keep = ("guidance_scale", "use_apg", "num_steps", "eval_num_steps", "eval_guidance_scale",
          "remat")
  return dataclasses.replace(header_cfg, **{k: getattr(base, k) for k in keep})
