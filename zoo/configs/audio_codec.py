"""Training recipes of the audio codecs, shared by the DAC, EnCodec and SNAC config files.

  dac:     descript-audio-codec conf/base.yml + conf/final/*.yml: AdamW lr 1e-4, betas
           (0.8, 0.99), per-step exponential decay 0.999996, batch 72 of 0.38 s crops; losses
           mel 15, feature matching 2, adversarial 1 (LSGAN), commitment 0.25, codebook 1;
           MPD (periods 2, 3, 5, 7, 11) + MRD (ffts 2048, 1024, 512 in 5 bands); gradient
           clipping 1e3 (generator) and 10 (discriminator).
  encodec: audiocraft config/solver/compression/default.yaml: Adam lr 3e-4, betas (0.5, 0.9),
           no clipping, batch 64 of 1 s crops; losses adv 4, feat 4, l1 0.1, msspec 2 (hinge
           GAN, MS-STFT discriminator at 5 scales). Not reproduced: audiocraft's loss balancer
           and its own multi-scale mel loss (msspec), for which DAC's mel loss stands in.
The tiny variants keep the recipe's losses on a tiny codec, a tiny discriminator and the
built-in audio, for CPU runs of a few minutes.
"""
import ml_collections

TINY_DISCRIMINATOR = dict(periods=(2, 3), fft_sizes=(256, 128), channels_scale=0.125)


def build_config(model: str, model_config, recipe: str, *, tiny: bool) -> ml_collections.ConfigDict:
  if recipe not in ("dac", "encodec"):
    raise ValueError(f"unknown audio recipe {recipe!r}; 'dac' or 'encodec'")
  dac = recipe == "dac"
  c = ml_collections.ConfigDict()
  c.model = model
  c.recipe = recipe
  c.seed = 0
  c.data = "builtin:audio"  # or folder:/path/to/wavs, tfds:librispeech
  c.eval_data = "builtin:audio"
  c.crop_seconds = (0.38 if dac else 1.0) if not tiny else 0.25
  c.eval_seconds = 1.0
  c.batch_size = (72 if dac else 64) if not tiny else 8
  c.eval_batch_size = 8
  c.num_eval_clips = 16 if tiny else 256
  c.total_steps = 400_000 if not tiny else 2000
  c.learning_rate = (1e-4 if dac else 3e-4) if not tiny else 1e-3
  c.lr_schedule = "exponential"
  c.lr_decay = 0.999996 if dac else 1.0
  c.warmup_steps = 0
  c.end_learning_rate = 0.0
  c.beta1, c.beta2 = (0.8, 0.99) if dac else (0.5, 0.9)
  c.weight_decay = 0.01 if dac else 0.0  # torch AdamW's default / plain Adam
  c.grad_clip_norm = 1e3 if dac else 1e9
  c.ema_decay = 0.99 if tiny else 0.999
  c.loss = ml_collections.ConfigDict(
      dict(mel=15.0, stft=0.0, waveform_l1=0.0, commitment=0.25, codebook=1.0) if dac else
      dict(mel=2.0, stft=0.0, waveform_l1=0.1, commitment=1.0, codebook=0.0))
  audio = dict(sample_rate=model_config.sample_rate, channels=model_config.channels)
  if dac:
    audio.update(periods=(2, 3, 5, 7, 11), fft_sizes=(2048, 1024, 512), msstft=False)
  else:
    audio.update(periods=(), fft_sizes=(), msstft=True,
                 msstft_ffts=(1024, 2048, 512, 256, 128))
  if tiny:
    audio.update(TINY_DISCRIMINATOR if dac else dict(msstft_ffts=(256, 128),
                                                     channels_scale=0.125))
  c.gan = ml_collections.ConfigDict(dict(
      enabled=True, discriminator="audio", discriminator_start=0 if not tiny else 200,
      learning_rate=c.learning_rate, loss="lsgan" if dac else "hinge",
      adversarial=1.0 if dac else 4.0, feature_matching=2.0 if dac else 4.0,
      grad_clip_norm=10.0 if dac else 1e9, audio=audio))
  c.frozen = ()
  c.init_from = ""
  c.pixel_decoder_from_teacher = False
  c.objective = "pixels"
  c.loss.perceptual = 0.0
  c.log_every = 20 if tiny else 100
  c.eval_every = 250 if tiny else 10_000
  c.checkpoint_every = 250 if tiny else 10_000
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.dtype = "float32"
  c.grad_accum_steps = 1
  c.kernel_impl = ""
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict()
  return c
