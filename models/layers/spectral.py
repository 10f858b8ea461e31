"""Short-time Fourier transforms and mel filterbanks, with the semantics the codecs use.

`stft` follows torch.stft (periodic Hann window of `win_length` centred in `n_fft`, optional
centre padding, frames every `hop_length`); `mel_filterbank` follows librosa.filters.mel
(Slaney mel scale and area normalisation by default, or HTK), which DAC's mel loss and the
audio metrics are defined with.
"""
import functools

import jax.numpy as jnp
import numpy as np


def hann_window(length: int) -> np.ndarray:
  """The periodic Hann window (torch.hann_window, scipy.signal.get_window('hann'))."""
  n = np.arange(length)
  return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def stft(x, *, n_fft: int, hop_length: int, win_length: int | None = None, window=None,
         center: bool = True, pad_mode: str = "reflect", normalized: bool = False):
  """x [..., T] real -> complex64 [..., frames, n_fft // 2 + 1].

  `window` (length `win_length`) defaults to the periodic Hann window; it is zero-padded to
  `n_fft` on both sides as torch does. `pad_mode` is "reflect" or "constant" (centre padding).
  """
  win_length = n_fft if win_length is None else win_length
  if win_length > n_fft:
    raise ValueError(f"win_length {win_length} exceeds n_fft {n_fft}")
  window = hann_window(win_length) if window is None else np.asarray(window, np.float32)
  left = (n_fft - win_length) // 2
  window = np.pad(window, (left, n_fft - win_length - left))
  x = jnp.asarray(x, jnp.float32)
  if center:
    pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    if pad_mode == "reflect" and x.shape[-1] <= n_fft // 2:
      raise ValueError(f"reflect padding of {n_fft // 2} needs more than {x.shape[-1]} samples")
    x = jnp.pad(x, pad, mode=pad_mode)
  if x.shape[-1] < n_fft:
    raise ValueError(f"signal of {x.shape[-1]} samples is shorter than n_fft {n_fft}")
  num_frames = 1 + (x.shape[-1] - n_fft) // hop_length
  starts = np.arange(num_frames)[:, None] * hop_length + np.arange(n_fft)[None, :]
  frames = x[..., starts] * window  # [..., frames, n_fft]
  spec = jnp.fft.rfft(frames, axis=-1)
  return spec / np.sqrt(n_fft) if normalized else spec


def _hz_to_mel(f, htk: bool):
  f = np.asarray(f, np.float64)
  if htk:
    return 2595.0 * np.log10(1.0 + f / 700.0)
  f_sp, min_log_hz = 200.0 / 3, 1000.0
  min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
  return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz)
                  / logstep, f / f_sp)


def _mel_to_hz(m, htk: bool):
  m = np.asarray(m, np.float64)
  if htk:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
  f_sp, min_log_hz = 200.0 / 3, 1000.0
  min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
  return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=64)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None, htk: bool = False,
                   norm: str | None = "slaney") -> np.ndarray:
  """[n_fft // 2 + 1, n_mels] float32 triangular filters (librosa.filters.mel, transposed)."""
  fmax = sample_rate / 2.0 if fmax is None else fmax
  fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
  mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n_mels + 2),
                         htk)
  widths = np.diff(mel_freqs)
  ramps = mel_freqs[:, None] - fft_freqs[None, :]
  lower = -ramps[:-2] / widths[:-1, None]
  upper = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper))
  if norm == "slaney":
    weights *= (2.0 / (mel_freqs[2:n_mels + 2] - mel_freqs[:n_mels]))[:, None]
  elif norm is not None:
    raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
  return weights.T.astype(np.float32)
