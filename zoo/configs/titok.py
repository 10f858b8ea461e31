"""TiTok: the released tokenizers as registered names, and their training recipes.

`python train.py --config zoo/configs/titok.py:tiny` trains the tiny TiTok on the built-in
photos; `get_config` lists the published recipes (stage 1, stage 2, single stage).
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
TINY_CNN = dict(hidden_channels=32)  # the tiny teacher / pixel decoder: f16, 1/16 the FLOPs
TINY_CONVNEXT = dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))
_TINY_ALIASES = {"tiny": "titok_tiny_vq", "tiny_stage1": "titok_tiny_stage1",
                 "tiny_stage2": "titok_tiny_stage1", "tiny_single_stage": "titok_tiny_vq"}
_LEGACY_STAGES = ("_stage1", "_stage2")


def _recipe(arg: str, models: dict, tiny_aliases: dict) -> tuple[str, str]:
  """(model name, recipe) where recipe is pixels | stage1 | stage2 | single_stage."""
  if arg in tiny_aliases:
    recipe = arg.removeprefix("tiny").removeprefix("_") or "pixels"
    return tiny_aliases[arg], recipe
  legacy = sorted(name for name, (cfg, repo) in models.items() if cfg.is_legacy and repo)
  for suffix in _LEGACY_STAGES:
    if arg.endswith(suffix) and arg[:-len(suffix)] in models:
      model = arg[:-len(suffix)]
      if not models[model][0].is_legacy:
        raise ValueError(f"{arg!r}: the two-stage recipe exists for the legacy models "
                         f"{legacy}; the others train in one stage (use the bare name)")
      return model, suffix[1:]
  if arg in models:
    return arg, "pixels" if models[arg][0].is_legacy else "single_stage"
  raise ValueError(f"unknown config {arg!r}; choose one of {sorted(tiny_aliases)}, "
                   f"'<{'|'.join(legacy)}>_stage1|_stage2' or one of {sorted(models)}")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config for `arg`:

    tiny, tiny_stage1, tiny_stage2, tiny_single_stage   CPU-sized versions of the recipes
    titok_{s128,b64,l32}_stage1   proxy codes of the frozen MaskGIT-VQGAN (teacher_checkpoint)
    titok_{s128,b64,l32}_stage2   frozen encoder + quantizer; L2 + ConvNeXt perceptual + GAN
                                  (init_from: the stage-1 workdir; teacher_checkpoint)
    titok_{bl,sl,ll}*_{vq8k,vae_c16}  single stage: L2 + LPIPS + ConvNeXt + GAN (+ VQ or KL)
    titok_{s128,b64,l32}          the legacy model with L2 + VQ only
  """
  return build_config(arg or "tiny", MODELS, _TINY_ALIASES)


def build_config(arg: str, models: dict, tiny_aliases: dict) -> ml_collections.ConfigDict:
  """The TiTok-family recipe `arg` over the registered `models` (TiTok, One-D-Piece)."""
  model, recipe = _recipe(arg, models, tiny_aliases)
  tiny = models[model][0].image_size <= 64
  c = ml_collections.ConfigDict()
  c.model = model
  c.recipe = recipe
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
  c.loss = ml_collections.ConfigDict(dict(
      pixel_l2=1.0, quantizer=1.0, kl=1e-6,
      perceptual=0.0,  # outer weight of the perceptual loss; 0 turns it off
      perceptual_mode="convnext_s"))  # or "lpips", "lpips-convnext_s-<w>-<w>" (TiTok's names)
  # Released weight files of the perceptual nets (lpips: directory with vgg16 + vgg.pth,
  # convnext: convnext_small-0c510722.pth); empty: randomly initialised (tiny configs only).
  c.perceptual_checkpoints = ml_collections.ConfigDict(dict(lpips="", convnext=""))
  c.perceptual_overrides = ml_collections.ConfigDict(
      dict(lpips={}, convnext=TINY_CONVNEXT if tiny else {}))
  # Hinge GAN with LeCam on the NLayer discriminator (TiTok stage 2 / single stage).
  c.gan = ml_collections.ConfigDict(dict(
      enabled=False, discriminator_start=20_000, discriminator_factor=1.0,
      discriminator_weight=0.01, lecam_regularization_weight=0.001, lecam_ema_decay=0.999,
      learning_rate=1e-4, hidden_channels=128, num_stages=3, blur_resample=True))
  c.frozen = ()  # top-level modules left untrained, e.g. ("encoder", "latent_tokens", "quantize")
  c.init_from = ""  # a stage-1 workdir whose EMA weights initialise the model (stage 2)
  c.pixel_decoder_from_teacher = False  # stage 2: pixel_quantize/decoder <- the teacher's
  c.log_every = 20
  c.eval_every = 200 if tiny else 10_000
  c.checkpoint_every = 100 if tiny else 10_000
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))  # -1: the rest
  c.dtype = "float32"  # activations; "bfloat16" keeps float32 master weights and quantizers
  c.grad_accum_steps = 1  # micro-batches per step (batch_size must divide evenly)
  # Attention / nearest-code kernels for the whole run: "" (by platform), "xla", "pallas",
  # "interpret" or "cudnn" (pallas_kernels.impl; also the ZOO_KERNEL_IMPL variable).
  c.kernel_impl = ""
  # CVQ-style dead-code re-anchoring of the VQ codebook (TA-TiTok's clustering_vq).
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict(dict(remat=False))
  # "pixels": L2 + VQ/KL (+ perceptual, GAN); "proxy_codes": stage-1 cross-entropy.
  c.objective = "proxy_codes" if recipe == "stage1" else "pixels"
  c.teacher = "maskgit_vqgan_f16"
  c.teacher_checkpoint = ""  # maskgit-vqgan-imagenet-f16-256.bin; empty: random (tiny only)
  c.teacher_overrides = ml_collections.ConfigDict(
      dict(image_size=64, cnn=TINY_CNN) if tiny else {})
  if recipe == "stage1" and not tiny:
    c.model_overrides.finetune_decoder = False
  if recipe == "stage2":
    _stage2(c, tiny)
  if recipe == "single_stage":
    _single_stage(c, tiny, vq=models[model][0].quantize_mode == "vq")
  return c


def _stage2(c, tiny: bool):
  """configs/training/TiTok/stage2/*.yaml: only the decoders train, on pixels."""
  c.model_overrides.update(finetune_decoder=True, commitment_cost=0.0)
  if tiny:
    c.model_overrides.pixel_cnn = TINY_CNN
  c.frozen = ("encoder", "latent_tokens", "quantize")
  c.pixel_decoder_from_teacher = True
  c.loss.update(quantizer=0.0, perceptual=0.1, perceptual_mode="convnext_s")
  c.gan.update(enabled=True, discriminator_start=100 if tiny else 20_000,
               discriminator_weight=0.01)
  c.beta2 = 0.999
  if tiny:
    c.total_steps, c.batch_size = 300, 8
    c.gan.update(hidden_channels=32, num_stages=2)
  else:
    c.total_steps, c.warmup_steps = 500_000, 5_000
    c.eval_every = c.checkpoint_every = 50_000


def _single_stage(c, tiny: bool, *, vq: bool):
  """The single-stage recipe of the BL/SL/LL checkpoints: the official repo has no plain
  ImageNet config (issue #100), so these are TA-TiTok's losses (configs/training/TA-TiTok)."""
  c.loss.update(perceptual=1.1, perceptual_mode="lpips-convnext_s-1.0-0.1")
  c.gan.update(enabled=True, discriminator_start=200 if tiny else 200_000,
               discriminator_weight=0.1)
  c.codebook_reanchor = vq
  c.beta2 = 0.999
  if tiny:
    c.total_steps, c.batch_size = 400, 8
    c.gan.update(hidden_channels=32, num_stages=2)
