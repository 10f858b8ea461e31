"""Per-clip audio reconstruction metrics ([B] arrays), as DAC's scripts/evaluate.py reports
them: mel distance and multi-scale STFT distance (dac.nn.loss MelSpectrogramLoss() and
MultiScaleSTFTLoss() with their class defaults) and SI-SDR (audiotools' SISDRLoss, negated).
PESQ and STOI come from the `pesq` and `pystoi` packages when installed.
"""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal as scipy_signal

from zoo.train.audio_losses import MelLossConfig, StftLossConfig, mel_loss, stft_loss

# dac.nn.loss.MelSpectrogramLoss() defaults, what evaluate.py instantiates.
EVAL_MEL = MelLossConfig(n_mels=(150, 80), window_lengths=(2048, 512), mel_fmin=(0.0, 0.0),
                         mel_fmax=(None, None), mag_weight=1.0, pow=2.0)
EVAL_STFT = StftLossConfig()


def _check(ref, est):
  if getattr(ref, "ndim", None) != 3:
    raise ValueError(f"audio must be [B, T, C]; got shape {getattr(ref, 'shape', None)}")
  if ref.shape != est.shape:
    raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in shape")


def _per_clip(fn, ref, est):
  return jax.vmap(lambda r, e: fn(r[None], e[None]))(jnp.asarray(ref, jnp.float32),
                                                      jnp.asarray(est, jnp.float32))


def mel_distance(ref, est, sample_rate: int):
  _check(ref, est)
  return _per_clip(lambda r, e: mel_loss(e, r, sample_rate, EVAL_MEL), ref, est)


def stft_distance(ref, est):
  _check(ref, est)
  return _per_clip(lambda r, e: stft_loss(e, r, EVAL_STFT), ref, est)


def si_sdr(ref, est, *, eps: float = 1e-8):
  """Scale-invariant SDR in dB per clip (zero-mean, the reference scaled onto the estimate;
  channels are flattened into one signal, as audiotools does)."""
  _check(ref, est)
  ref = jnp.asarray(ref, jnp.float32).reshape(ref.shape[0], -1)
  est = jnp.asarray(est, jnp.float32).reshape(est.shape[0], -1)
  ref = ref - ref.mean(axis=1, keepdims=True)
  est = est - est.mean(axis=1, keepdims=True)
  scale = (jnp.sum(est * ref, axis=1) + eps) / (jnp.sum(ref ** 2, axis=1) + eps)
  target = scale[:, None] * ref
  noise = jnp.sum((est - target) ** 2, axis=1)
  return 10.0 * jnp.log10(jnp.sum(target ** 2, axis=1) / noise + eps)


def optional_metrics_available() -> dict:
  return {"pesq": importlib.util.find_spec("pesq") is not None,
          "stoi": importlib.util.find_spec("pystoi") is not None}


def _mono_at(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
  mono = np.asarray(audio, np.float64).mean(axis=-1)
  if rate == target:
    return mono
  g = np.gcd(rate, target)
  return scipy_signal.resample_poly(mono, target // g, rate // g)


def _require(package: str, module: str):
  if importlib.util.find_spec(module) is None:
    raise ImportError(f"this metric needs the {package} package: pip install {package}")


def pesq_score(ref, est, sample_rate: int) -> np.ndarray:
  """Wide-band PESQ (16 kHz; other rates are resampled) per clip, mono mix."""
  _require("pesq", "pesq")
  from pesq import pesq
  _check(ref, est)
  scores = []
  for i, (r, e) in enumerate(zip(ref, est)):
    try:
      scores.append(pesq(16000, _mono_at(r, sample_rate, 16000), _mono_at(e, sample_rate, 16000),
                         "wb"))
    except Exception as error:  # the pesq package raises its own types (NoUtterancesError)
      raise ValueError(f"PESQ failed on clip {i} ({type(error).__name__}: {error}); PESQ "
                       "rates speech and finds none in silence, noise or music") from error
  return np.array(scores)


def stoi_score(ref, est, sample_rate: int) -> np.ndarray:
  """STOI per clip, mono mix, at the clip's rate (pystoi resamples to 10 kHz itself)."""
  _require("pystoi", "pystoi")
  from pystoi import stoi
  _check(ref, est)
  scores = np.array([stoi(_mono_at(r, sample_rate, sample_rate),
                          _mono_at(e, sample_rate, sample_rate), sample_rate)
                     for r, e in zip(ref, est)])
  # pystoi returns 1e-5 (with a warning) when under 30 frames of 25.6 ms remain after it
  # drops silent frames: a placeholder, not a score.
  if np.any(scores == 1e-5):
    raise ValueError(f"STOI needs at least ~0.8 s of non-silent audio per clip; got clips of "
                     f"{ref.shape[1] / sample_rate:.2f} s")
  return scores
