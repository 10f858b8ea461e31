"""WAV files <-> float32 [T, C] audio in [-1, 1] (PCM 8/16/32-bit or float WAV, via scipy)."""
import pathlib

import numpy as np
from scipy.io import wavfile

_PCM_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def read_wav(path) -> tuple[np.ndarray, int]:
  """(float32 [T, C] in [-1, 1], sample rate) of a WAV file."""
  path = pathlib.Path(path)
  if path.suffix.lower() != ".wav":
    raise ValueError(f"{path}: only WAV files can be read (got {path.suffix or 'no suffix'}); "
                     "convert other formats first, e.g. ffmpeg -i in.flac out.wav")
  try:
    rate, data = wavfile.read(path)
  except (ValueError, EOFError) as e:
    raise ValueError(f"{path}: not a readable WAV file ({e})") from e
  if data.dtype in _PCM_SCALE:
    audio = data.astype(np.float32) / _PCM_SCALE[data.dtype]
  elif data.dtype == np.uint8:
    audio = (data.astype(np.float32) - 128.0) / 128.0
  elif data.dtype in (np.float32, np.float64):
    audio = data.astype(np.float32)
  else:
    raise ValueError(f"{path}: unsupported WAV sample type {data.dtype}")
  audio = audio[:, None] if audio.ndim == 1 else audio
  if not np.all(np.isfinite(audio)):
    raise ValueError(f"{path}: contains NaN or Inf samples")
  return audio, int(rate)


def write_wav(path, audio, sample_rate: int) -> None:
  """Writes float audio [T] or [T, C] in [-1, 1] (clipped) as 16-bit PCM."""
  audio = np.asarray(audio, np.float32)
  if audio.ndim not in (1, 2):
    raise ValueError(f"audio must be [T] or [T, C]; got shape {audio.shape}")
  if not np.all(np.isfinite(audio)):
    raise ValueError("audio contains NaN or Inf")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  # The inverse of read_wav's / 32768 (only +1.0 itself saturates, at 32767).
  pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
  wavfile.write(path, int(sample_rate), pcm)
