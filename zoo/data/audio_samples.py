"""`builtin:audio`: a sample set the zoo synthesizes, so a fresh machine trains and evaluates
codecs with nothing downloaded.

Five kinds of 2-second clips, in turn: speech-like (a glottal pulse train with a gliding pitch
through vowel formant resonators, syllable envelopes, pauses and fricative noise), chords of
harmonic tones with note changes, linear and exponential chirps, white / pink noise bursts,
and decaying clicks. Clip i of a split is made from seed (split, i) at the rate asked for;
the train and eval splits never share a seed.
"""
import numpy as np
from scipy import signal

KINDS = ("speech", "chord", "chirp", "noise", "clicks")
SPLITS = {"train": (0, 160), "eval": (1, 32)}  # (seed offset, number of clips)
SECONDS = 2.0
# (F1, F2, F3) in Hz of the vowels a, e, i, o, u (Peterson & Barney averages).
VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410),
          (300, 870, 2240))


def _resonate(x, freq, bandwidth, rate):
  """A two-pole resonator at `freq` Hz (skipped above Nyquist)."""
  if freq >= 0.45 * rate:
    return x
  r = np.exp(-np.pi * bandwidth / rate)
  a = [1.0, -2.0 * r * np.cos(2 * np.pi * freq / rate), r * r]
  return signal.lfilter([1.0 - r], a, x)


def _envelope(n, attack, release):
  env = np.ones(n)
  a, r = min(attack, n // 2), min(release, n // 2)
  env[:a] = np.linspace(0.0, 1.0, a)
  env[n - r:] = np.linspace(1.0, 0.0, r)
  return env


def speech(rng, rate, n):
  t = np.arange(n) / rate
  f0 = rng.uniform(90, 220) * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
                               + 0.05 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
  phase = np.cumsum(f0) / rate
  pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
  source = signal.lfilter([1.0], [1.0, -0.95], pulses)  # spectral tilt of the glottal flow
  out = np.zeros(n)
  start = int(rng.integers(0, rate // 10))
  while start < n:
    length = int(rng.uniform(0.12, 0.3) * rate)
    end = min(start + length, n)
    f1, f2, f3 = VOWELS[rng.integers(len(VOWELS))]
    seg = source[start:end]
    seg = sum(g * _resonate(seg, f, b, rate) for f, b, g in ((f1, 80, 1.0), (f2, 100, 0.6),
                                                               (f3, 150, 0.3)))
    out[start:end] += seg * _envelope(end - start, int(0.02 * rate), int(0.05 * rate))
    if rng.random() < 0.4:  # a fricative after the syllable
      fric = min(end + int(0.08 * rate), n)
      hiss = rng.normal(size=fric - end)
      hiss = _resonate(hiss, min(rng.uniform(3000, 6000), 0.4 * rate), 2000, rate)
      out[end:fric] += 0.3 * hiss * _envelope(fric - end, int(0.01 * rate), int(0.03 * rate))
      end = fric
    start = end + int(rng.uniform(0.02, 0.25) * rate)  # a pause
  return out


def chord(rng, rate, n):
  out = np.zeros(n)
  starts = np.sort(rng.integers(0, n, size=3))
  starts[0] = 0
  for begin, end in zip(starts, list(starts[1:]) + [n]):
    t = np.arange(end - begin) / rate
    root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
    for semitones in (0, 4, 7)[:rng.integers(2, 4)]:
      f = root * 2 ** (semitones / 12)
      for k in range(1, 7):
        if k * f < 0.45 * rate:
          out[begin:end] += np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6.3)) / k ** 1.5
    out[begin:end] *= _envelope(end - begin, int(0.01 * rate), int(0.1 * rate))
  return out


def chirp(rng, rate, n):
  t = np.arange(n) / rate
  top = min(rng.uniform(2000, 8000), 0.45 * rate)
  method = "linear" if rng.random() < 0.5 else "logarithmic"
  return signal.chirp(t, f0=rng.uniform(50, 300), t1=t[-1], f1=top, method=method)


def noise(rng, rate, n):
  out = np.zeros(n)
  white = rng.normal(size=n)
  pink = signal.lfilter([0.049922, -0.095993, 0.050612, -0.004408],
                        [1, -2.494956, 2.017265, -0.522189], rng.normal(size=n))
  src = white if rng.random() < 0.5 else pink / np.abs(pink).max()
  for _ in range(rng.integers(2, 6)):
    begin = int(rng.integers(0, n - rate // 10))
    end = min(n, begin + int(rng.uniform(0.05, 0.5) * rate))
    out[begin:end] += src[begin:end] * _envelope(end - begin, int(0.005 * rate),
                                                 int(0.05 * rate))
  return out


def clicks(rng, rate, n):
  impulses = np.zeros(n)
  period = int(rate / rng.uniform(2, 12))
  impulses[rng.integers(0, period)::period] = 1.0
  ring = _resonate(impulses, rng.uniform(500, 3000), rng.uniform(50, 300), rate)
  return ring + 0.5 * impulses


GENERATORS = {"speech": speech, "chord": chord, "chirp": chirp, "noise": noise, "clicks": clicks}


def synthesize(kind: str, seed, sample_rate: int, seconds: float = SECONDS) -> np.ndarray:
  """One clip: float32 [T, 1], peak in [0.3, 0.9]."""
  rng = np.random.default_rng(seed)
  clip = GENERATORS[kind](rng, sample_rate, int(round(seconds * sample_rate)))
  peak = np.max(np.abs(clip))
  clip = clip / peak * rng.uniform(0.3, 0.9) if peak > 0 else clip
  return clip.astype(np.float32)[:, None]


class SampleAudio:
  """Random-access source of (float32 [T, 1], rate) clips of one split of the built-in set."""

  def __init__(self, split: str, sample_rate: int):
    if split not in SPLITS:
      raise ValueError(f"builtin:audio has splits {sorted(SPLITS)}, not {split!r}")
    self.offset, self.size = SPLITS[split]
    self.sample_rate = sample_rate

  def __len__(self):
    return self.size

  def kind(self, index: int) -> str:
    return KINDS[index % len(KINDS)]

  def __getitem__(self, index: int):
    if not 0 <= index < self.size:
      raise IndexError(index)
    seed = (20_251_123, self.offset, index)
    return synthesize(self.kind(index), seed, self.sample_rate), self.sample_rate
