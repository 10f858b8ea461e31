"""Codec training losses, as descript-audio-codec defines them (dac/nn/loss.py over
audiotools' AudioSignal.stft / mel_spectrogram), on [B, T, C] signals.

Spectra: torch.stft with a periodic Hann window of `window` samples, hop window // 4, centred
with reflect padding (audiotools' defaults; no match_stride). A term compares
log10(max(S, clamp_eps) ** pow) by L1 (mean over every element), plus `mag_weight` x L1 of S.
Adversarial terms take the discriminator output format of models/discriminators/audio.py: per
sub-discriminator a list of feature maps whose last element is the logits.
"""
import dataclasses

import jax
import jax.numpy as jnp

from models.layers.spectral import mel_filterbank, stft


@dataclasses.dataclass(frozen=True)
class MelLossConfig:
  """DAC's final training configuration (conf/final/*.yml MelSpectrogramLoss)."""
  n_mels: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
  window_lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
  mel_fmin: tuple[float, ...] = (0.0,) * 7
  mel_fmax: tuple[float | None, ...] = (None,) * 7
  clamp_eps: float = 1e-5
  mag_weight: float = 0.0
  log_weight: float = 1.0
  pow: float = 1.0


@dataclasses.dataclass(frozen=True)
class StftLossConfig:
  """DAC's MultiScaleSTFTLoss (its class defaults; the final configs set window_lengths only)."""
  window_lengths: tuple[int, ...] = (2048, 512)
  clamp_eps: float = 1e-5
  mag_weight: float = 1.0
  log_weight: float = 1.0
  pow: float = 2.0


def _channels_first(x):
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 3:
    raise ValueError(f"audio must be [B, T, C]; got shape {x.shape}")
  return jnp.swapaxes(x, 1, 2)  # [B, C, T]: the STFT runs over the last axis


def _check_pair(x, y):
  if x.shape != y.shape:
    raise ValueError(f"estimate {x.shape} and reference {y.shape} differ in shape")


def magnitude(x, window: int):
  """[B, T, C] -> |STFT| [B, C, frames, window // 2 + 1]."""
  return jnp.abs(stft(_channels_first(x), n_fft=window, hop_length=window // 4))


def _compare(a, b, clamp_eps, pow_, log_weight, mag_weight):
  def log(s):
    return jnp.log10(jnp.maximum(s, clamp_eps) ** pow_)
  loss = log_weight * jnp.mean(jnp.abs(log(a) - log(b)))
  if mag_weight:
    loss += mag_weight * jnp.mean(jnp.abs(a - b))
  return loss


def mel_spectrogram(x, sample_rate: int, window: int, n_mels: int, fmin=0.0, fmax=None):
  """[B, T, C] -> mel magnitudes [B, C, frames, n_mels] (librosa's Slaney filters)."""
  filters = mel_filterbank(sample_rate, window, n_mels, float(fmin),
                           None if fmax is None else float(fmax))
  return magnitude(x, window) @ filters


def mel_loss(x, y, sample_rate: int, cfg: MelLossConfig = MelLossConfig()):
  """Multi-scale mel distance between `x` and `y` ([B, T, C]); symmetric."""
  _check_pair(x, y)
  loss = jnp.zeros((), jnp.float32)
  for n_mels, window, fmin, fmax in zip(cfg.n_mels, cfg.window_lengths, cfg.mel_fmin,
                                        cfg.mel_fmax, strict=True):
    loss += _compare(mel_spectrogram(x, sample_rate, window, n_mels, fmin, fmax),
                     mel_spectrogram(y, sample_rate, window, n_mels, fmin, fmax),
                     cfg.clamp_eps, cfg.pow, cfg.log_weight, cfg.mag_weight)
  return loss


def stft_loss(x, y, cfg: StftLossConfig = StftLossConfig()):
  """Multi-scale log (and linear) STFT magnitude distance; symmetric."""
  _check_pair(x, y)
  loss = jnp.zeros((), jnp.float32)
  for window in cfg.window_lengths:
    loss += _compare(magnitude(x, window), magnitude(y, window), cfg.clamp_eps, cfg.pow,
                     cfg.log_weight, cfg.mag_weight)
  return loss


def waveform_l1(x, y):
  _check_pair(x, y)
  return jnp.mean(jnp.abs(jnp.asarray(x, jnp.float32) - jnp.asarray(y, jnp.float32)))


def _logits(outputs):
  return [maps[-1].astype(jnp.float32) for maps in outputs]


def generator_adversarial_loss(fake_outputs, kind: str):
  """Sum over sub-discriminators: LSGAN mean((1 - D(fake))^2) (DAC), or hinge
  mean(relu(1 - D(fake))) (audiocraft's EnCodec)."""
  terms = {"lsgan": lambda f: jnp.mean((1.0 - f) ** 2),
           "hinge": lambda f: jnp.mean(jax.nn.relu(1.0 - f))}
  if kind not in terms:
    raise ValueError(f"unknown GAN loss {kind!r}; 'lsgan' or 'hinge'")
  return sum(terms[kind](f) for f in _logits(fake_outputs))


def discriminator_adversarial_loss(real_outputs, fake_outputs, kind: str):
  """Sum over sub-discriminators: LSGAN mean(D(fake)^2) + mean((1 - D(real))^2), or hinge
  mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
  terms = {"lsgan": lambda r, f: jnp.mean(f ** 2) + jnp.mean((1.0 - r) ** 2),
           "hinge": lambda r, f: jnp.mean(jax.nn.relu(1.0 - r)) + jnp.mean(jax.nn.relu(1.0 + f))}
  if kind not in terms:
    raise ValueError(f"unknown GAN loss {kind!r}; 'lsgan' or 'hinge'")
  return sum(terms[kind](r, f) for r, f in zip(_logits(real_outputs), _logits(fake_outputs),
                                               strict=True))


def feature_matching_loss(real_outputs, fake_outputs):
  """DAC: sum over sub-discriminators and their feature maps (not the logits) of
  mean |D_j(fake) - stop_gradient(D_j(real))|."""
  loss = jnp.zeros((), jnp.float32)
  for real_maps, fake_maps in zip(real_outputs, fake_outputs, strict=True):
    for real, fake in zip(real_maps[:-1], fake_maps[:-1], strict=True):
      loss += jnp.mean(jnp.abs(fake.astype(jnp.float32)
                               - jax.lax.stop_gradient(real.astype(jnp.float32))))
  return loss
