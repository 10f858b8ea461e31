"""Audio preparation: resampling, channel conversion and fixed-length crops of [T, C] clips."""
import math

import numpy as np
from scipy import signal


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
  """[T, C] from `rate` to `target` Hz by polyphase filtering (scipy.signal.resample_poly)."""
  if rate <= 0 or target <= 0:
    raise ValueError(f"sample rates must be positive, got {rate} -> {target}")
  if rate == target:
    return audio
  g = math.gcd(int(rate), int(target))
  return signal.resample_poly(audio, target // g, rate // g, axis=0).astype(np.float32)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
  """Mono -> C by copying, C -> mono by averaging; other mismatches are errors."""
  have = audio.shape[1]
  if have == channels:
    return audio
  if have == 1:
    return np.repeat(audio, channels, axis=1)
  if channels == 1:
    return audio.mean(axis=1, keepdims=True)
  raise ValueError(f"cannot turn {have}-channel audio into {channels} channels")


def random_crop(audio: np.ndarray, rng: np.random.Generator, length: int) -> np.ndarray:
  """A random window of `length` samples; shorter clips are zero-padded at the end."""
  if len(audio) <= length:
    return np.pad(audio, ((0, length - len(audio)), (0, 0)))
  start = int(rng.integers(0, len(audio) - length + 1))
  return audio[start:start + length]


def eval_crop(audio: np.ndarray, length: int) -> np.ndarray:
  """The first `length` samples (zero-padded): the same clip at every evaluation."""
  return audio[:length] if len(audio) >= length else np.pad(
      audio, ((0, length - len(audio)), (0, 0)))


def prepare(audio: np.ndarray, rate: int, *, sample_rate: int, channels: int) -> np.ndarray:
  return to_channels(resample(audio, rate, sample_rate), channels).astype(np.float32)
