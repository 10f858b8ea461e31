"""The codec training recipes, shared by the codec config files.

dac (descript-audio-codec conf/base.yml and conf/final/*.yml):
  AdamW lr 1e-4, betas (0.8, 0.99), weight decay 0.01 (torch's default), per-step exponential
  decay 0.999996; batch 72 of 0.38 s crops; generator losses mel 15, feature matching 2,
  adversarial 1 (LSGAN), commitment 0.25, codebook 1; MPD (periods 2, 3, 5, 7, 11) + MRD (ffts
  2048, 1024, 512 in 5 bands); gradient clipping 1e3 (generator) and 10 (discriminator).
Not reproduced: DAC's data mixture and its -16 dB loudness normalisation and phase shifts.

encodec (audiocraft config/solver/compression/default.yaml; EnCodec's own repo has no training
code): Adam lr 3e-4, betas (0.5, 0.9), no weight decay, no clipping, constant rate; EMA of the
weights 0.99; batch 64 of 1 s; adv 4 (hinge) + feat 4 + l1 0.1 + msspec 2 on the MS-STFT
discriminator at 5 scales (n_fft 1024, 2048, 512, 256, 128; 32 filters) + the commitment
penalty; random bitrates (here every example keeps a random number of levels). Not reproduced:
audiocraft's loss balancer, its own multi-scale mel loss (DAC's mel loss stands in for msspec)
and its mean-normalised feature matching (plain L1 here).

The tiny variants keep a recipe's losses on a tiny codec and a narrow discriminator on the
built-in audio, for CPU runs of a few minutes.
"""
import ml_collections


def build_config(model: str, model_config, *, tiny: bool,
                 recipe: str = "dac") -> ml_collections.ConfigDict:
  if recipe not in ("dac", "encodec"):
    raise ValueError(f"unknown codec recipe {recipe!r}; 'dac' or 'encodec'")
  c = ml_collections.ConfigDict()
  c.model = model
  c.recipe = recipe
  c.seed = 0
  c.data = "builtin:audio"  # or folder:/path/to/wavs, tfds:librispeech
  c.eval_data = "builtin:audio"
  c.crop_seconds = 0.38 if not tiny else 0.25
  c.eval_seconds = 1.0
  c.batch_size = 72 if not tiny else 8
  c.eval_batch_size = 8
  c.num_eval_clips = 256 if not tiny else 16
  c.total_steps = 400_000 if not tiny else 1500
  c.learning_rate = 1e-4 if not tiny else 1e-3
  c.lr_schedule = "exponential"
  c.lr_decay = 0.999996 if not tiny else 0.9995
  c.warmup_steps = 0
  c.end_learning_rate = 0.0
  c.beta1, c.beta2 = 0.8, 0.99
  c.weight_decay = 0.01
  c.grad_clip_norm = 1e3
  c.ema_decay = 0.999 if not tiny else 0.99
  c.loss = ml_collections.ConfigDict(dict(
      mel=15.0, stft=0.0, waveform_l1=0.0, commitment=0.25, codebook=1.0, perceptual=0.0))
  c.gan = ml_collections.ConfigDict(dict(
      enabled=True, discriminator="audio", discriminator_start=0 if not tiny else 500,
      learning_rate=c.learning_rate, loss="lsgan", adversarial=1.0, feature_matching=2.0,
      grad_clip_norm=10.0,
      audio=dict(sample_rate=model_config.sample_rate, channels=model_config.channels,
                 periods=(2, 3, 5, 7, 11), fft_sizes=(2048, 1024, 512),
                 width_scale=1.0 if not tiny else 0.125)))
  c.frozen = ()
  c.init_from = ""
  c.pixel_decoder_from_teacher = False
  c.objective = "pixels"
  c.log_every = 100 if not tiny else 20
  c.eval_every = 10_000 if not tiny else 250
  c.checkpoint_every = 10_000 if not tiny else 500
  c.keep_checkpoints = 3
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  c.dtype = "float32"
  c.grad_accum_steps = 1
  c.kernel_impl = ""
  c.codebook_reanchor = False
  c.model_overrides = ml_collections.ConfigDict()
  if recipe == "encodec":
    _encodec(c, tiny)
  return c


def _encodec(c, tiny: bool):
  c.crop_seconds = 1.0 if not tiny else 0.25
  c.batch_size = 64 if not tiny else 8
  c.learning_rate = 3e-4 if not tiny else 1e-3
  c.lr_decay = 1.0  # constant
  c.beta1, c.beta2 = 0.5, 0.9
  c.weight_decay = 0.0
  c.grad_clip_norm = 1e9  # audiocraft's max_norm 0: no clipping
  c.ema_decay = 0.99
  c.loss.update(mel=2.0, waveform_l1=0.1, commitment=1.0, codebook=0.0)
  c.gan.update(loss="hinge", adversarial=4.0, feature_matching=4.0, grad_clip_norm=1e9,
               learning_rate=c.learning_rate)
  c.gan.audio.update(periods=(), fft_sizes=(),
                     msstft_n_ffts=(1024, 2048, 512, 256, 128) if not tiny else (256, 128),
                     width_scale=1.0 if not tiny else 0.25)
  c.model_overrides.quantizer_dropout = 1.0
