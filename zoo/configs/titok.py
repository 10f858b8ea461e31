"""TiTok: the released tokenizers as registered names, and the training config.

`python train.py --config zoo/configs/titok.py:tiny` trains the tiny TiTok on the built-in
photos; `:titok_s128` etc. give the published model with this issue's pixel/VQ losses.
"""
import ml_collections

from models.image.titok import TiTokConfig

# The released checkpoints (HF repo ids in `hf_repo`), with their official inference configs.
_LEGACY = dict(codebook_size=4096, token_size=12, use_l2_norm=True, is_legacy=True,
               finetune_decoder=True)
_VQ8K = dict(codebook_size=8192, token_size=64, use_l2_norm=False, is_legacy=False,
             finetune_decoder=False)
_VAE = dict(quantize_mode="vae", token_size=16, use_l2_norm=False, is_legacy=False,
            finetune_decoder=False)

MODELS = {
    "titok_l32": (TiTokConfig(encoder_size="large", decoder_size="large", num_latent_tokens=32,
                              **_LEGACY), "yucornetto/tokenizer_titok_l32_imagenet"),
    "titok_b64": (TiTokConfig(encoder_size="base", decoder_size="base", num_latent_tokens=64,
                              **_LEGACY), "yucornetto/tokenizer_titok_b64_imagenet"),
    "titok_s128": (TiTokConfig(encoder_size="small", decoder_size="small", num_latent_tokens=128,
                               **_LEGACY), "yucornetto/tokenizer_titok_s128_imagenet"),
    "titok_bl64_vq8k": (TiTokConfig(encoder_size="base", decoder_size="large",
                                    num_latent_tokens=64, **_VQ8K),
                        "yucornetto/tokenizer_titok_bl64_vq8k_imagenet"),
    "titok_bl128_vq8k": (TiTokConfig(encoder_size="base", decoder_size="large",
                                     num_latent_tokens=128, **_VQ8K),
                         "yucornetto/tokenizer_titok_bl128_vq8k_imagenet"),
    "titok_sl256_vq8k": (TiTokConfig(encoder_size="small", decoder_size="large",
                                     num_latent_tokens=256, **_VQ8K),
                         "yucornetto/tokenizer_titok_sl256_vq8k_imagenet"),
    "titok_ll32_vae_c16": (TiTokConfig(encoder_size="large", decoder_size="large",
                                       num_latent_tokens=32, **_VAE),
                           "yucornetto/tokenizer_titok_ll32_vae_c16_imagenet"),
    "titok_bl64_vae_c16": (TiTokConfig(encoder_size="base", decoder_size="large",
                                       num_latent_tokens=64, **_VAE),
                           "yucornetto/tokenizer_titok_bl64_vae_c16_imagenet"),
    "titok_bl128_vae_c16": (TiTokConfig(encoder_size="base", decoder_size="large",
                                        num_latent_tokens=128, **_VAE),
                            "yucornetto/tokenizer_titok_bl128_vae_c16_imagenet"),
    # Tiny variants: train on 2 CPU cores in minutes (64 px, 2-layer ViTs, RGB head).
    "titok_tiny_vq": (TiTokConfig(image_size=64, patch_size=8, encoder_size="tiny",
                                  decoder_size="tiny", num_latent_tokens=32, codebook_size=1024,
                                  token_size=16, use_l2_norm=True, is_legacy=False,
                                  finetune_decoder=False), None),
    "titok_tiny_vae": (TiTokConfig(image_size=64, patch_size=8, encoder_size="tiny",
                                   decoder_size="tiny", num_latent_tokens=32, quantize_mode="vae",
                                   token_size=8, use_l2_norm=False, is_legacy=False,
                                   finetune_decoder=False), None),
    # Stage 1 at 64 px: a 4x4 grid of 1024-way logits, matching the teacher's f16 codes.
    "titok_tiny_stage1": (TiTokConfig(image_size=64, patch_size=16, encoder_size="tiny",
                                      decoder_size="tiny", num_latent_tokens=32,
                                      codebook_size=1024, token_size=12, use_l2_norm=True,
                                      is_legacy=True, finetune_decoder=False), None),
}
_STAGE1_SUFFIX = "_stage1"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config. `arg`: a registered model name, `tiny` (= titok_tiny_vq), `tiny_stage1`,
  or `<legacy name>_stage1` (e.g. titok_s128_stage1: proxy-code training against the frozen
  MaskGIT-VQGAN; pass --config.teacher_checkpoint)."""
  arg = arg or "tiny"
  model = {"tiny": "titok_tiny_vq", "tiny_stage1": "titok_tiny_stage1"}.get(arg, arg)
  stage1 = model.endswith(_STAGE1_SUFFIX) and model not in MODELS or model == "titok_tiny_stage1"
  if model.endswith(_STAGE1_SUFFIX) and model not in MODELS:
    model = model[:-len(_STAGE1_SUFFIX)]
    if model not in MODELS or not MODELS[model][0].is_legacy:
      raise ValueError(f"{arg!r}: stage 1 exists for the legacy models titok_l32/b64/s128")
  if model not in MODELS:
    raise ValueError(f"unknown TiTok config {arg!r}; choose 'tiny', 'tiny_stage1', "
                     f"'<name>_stage1' or one of {sorted(MODELS)}")
  tiny = MODELS[model][0].image_size <= 64
  c = ml_collections.ConfigDict()
  c.model = model
  c.seed = 0
  c.data = "builtin:photos"  # or tfds:imagenet2012, folder:/path/to/images
  c.eval_data = "builtin:photos"
  c.batch_size = 32 if tiny else 256
  c.eval_batch_size = 32
  c.num_eval_images = 32 if tiny else 10_000  # builtin:photos holds 32 eval crops
  c.total_steps = 600 if tiny else 1_000_000
  c.learning_rate = 1e-3 if tiny else 1e-4
  c.end_learning_rate = 1e-5 if not tiny else 1e-4
  c.warmup_steps = 30 if tiny else 10_000
  c.beta1, c.beta2 = 0.9, 0.99
  c.weight_decay = 1e-4
  c.grad_clip_norm = 1.0
  c.ema_decay = 0.999
  c.loss = ml_collections.ConfigDict(dict(pixel_l2=1.0, quantizer=1.0, kl=1e-6))
  c.log_every = 20
  c.eval_every = 200 if tiny else 10_000
  c.checkpoint_every = 100 if tiny else 10_000
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))  # -1: the rest
  c.dtype = "float32"  # activations; "bfloat16" keeps float32 master weights and quantizers
  c.grad_accum_steps = 1  # micro-batches per step (batch_size must divide evenly)
  # CVQ-style dead-code re-anchoring of the VQ codebook (TA-TiTok's clustering_vq).
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict(dict(remat=False))
  # "pixels": L2 + VQ/KL; "proxy_codes": stage-1 cross-entropy against the teacher's codes.
  c.objective = "proxy_codes" if stage1 else "pixels"
  c.teacher = "maskgit_vqgan_f16"
  c.teacher_checkpoint = ""  # maskgit-vqgan-imagenet-f16-256.bin; empty: random (tiny only)
  c.teacher_overrides = ml_collections.ConfigDict(dict(image_size=64) if tiny else {})
  if stage1 and not tiny:
    c.model_overrides.finetune_decoder = False
  return c
