"""Golden values of DAC's losses and metrics (dac/nn/loss.py over audiotools' AudioSignal).

Run in a venv with torch and descript-audio-codec (no jax needed); see make_dac_golden.py for
the torchaudio stand-in:

  PYTHONPATH=/tmp/stubs /tmp/refvenv/bin/python tests/golden/make_audio_losses_golden.py

Writes audio_losses.npz next to this file: for each case (length, sample rate) the reference and
estimate signals [B, T, C], and per clip the final-config mel loss (`mel_train`), the default
MelSpectrogramLoss (`mel_eval`), MultiScaleSTFTLoss (`stft`), L1 (`l1`) and SI-SDR (`sisdr`).
"""
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
CASES = {"a": (4000, 16000, 1), "b": (3333, 16000, 1), "c": (5000, 24000, 2)}


def signals(length: int, rate: int, channels: int, seed: int):
  """A harmonic tone with vibrato and noise, and a degraded copy (filtered, noisy, scaled)."""
  rng = np.random.default_rng(seed)
  t = np.arange(length) / rate
  clips = []
  for b in range(2):
    f0 = 180.0 + 60 * b
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) + 0.05 * rng.normal(size=length)
    clips.append(np.stack([tone * (1 - 0.3 * c) for c in range(channels)], axis=-1))
  ref = 0.8 * np.stack(clips) / np.max(np.abs(clips))
  smooth = np.apply_along_axis(lambda x: np.convolve(x, np.ones(5) / 5, mode="same"), 1, ref)
  est = 0.9 * smooth + 0.02 * rng.normal(size=ref.shape)
  return ref.astype(np.float32), est.astype(np.float32)


def main():
  from audiotools import AudioSignal
  from dac.nn import loss

  mel_train = loss.MelSpectrogramLoss(
      n_mels=[5, 10, 20, 40, 80, 160, 320], window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
      mel_fmin=[0.0] * 7, mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5, mag_weight=0.0)
  metrics = {"mel_train": mel_train, "mel_eval": loss.MelSpectrogramLoss(),
             "stft": loss.MultiScaleSTFTLoss(), "l1": loss.L1Loss()}
  sisdr = loss.SISDRLoss()
  out = {}
  for name, (length, rate, channels) in CASES.items():
    ref, est = signals(length, rate, channels, seed=len(out))
    out[f"{name}_ref"], out[f"{name}_est"], out[f"{name}_rate"] = ref, est, np.array(rate)
    for key, fn in metrics.items():
      values = []
      for r, e in zip(ref, est):
        x = AudioSignal(torch.from_numpy(e.T[None].copy()), rate)
        y = AudioSignal(torch.from_numpy(r.T[None].copy()), rate)
        values.append(float(fn(x, y)))
      out[f"{name}_{key}"] = np.array(values)
    out[f"{name}_sisdr"] = np.array([
        -float(sisdr(AudioSignal(torch.from_numpy(r.T[None].copy()), rate),
                     AudioSignal(torch.from_numpy(e.T[None].copy()), rate)))
        for r, e in zip(ref, est)])
  np.savez_compressed(HERE / "audio_losses.npz", **out)
  print({k: v for k, v in out.items() if k.endswith(("mel_train", "sisdr"))})


if __name__ == "__main__":
  main()
