"""A picture of an original clip and its reconstruction: log-magnitude spectrograms."""
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from models.layers.spectral import stft  # noqa: E402


def log_spectrogram(audio: np.ndarray, n_fft: int = 1024) -> np.ndarray:
  """[T, C] audio -> [frames, bins] dB of the first channel (floor at -100 dB)."""
  mono = np.asarray(audio, np.float32)[:, 0]
  n_fft = min(n_fft, 2 ** int(np.log2(max(len(mono), 4))) // 2 * 2)
  spec = np.abs(np.asarray(stft(mono, n_fft=n_fft, hop_length=n_fft // 4, center=False)))
  return 20.0 * np.log10(np.maximum(spec, 1e-5))


def save_spectrogram_pair(path, original: np.ndarray, recon: np.ndarray, sample_rate: int):
  """Spectrograms of `original` over `recon` ([T, C] each) in one PNG with shared colours."""
  specs = [log_spectrogram(original), log_spectrogram(recon)]
  top = max(float(s.max()) for s in specs)
  fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
  seconds = len(original) / sample_rate
  for ax, spec, title in zip(axes, specs, ("original", "reconstruction")):
    ax.imshow(spec.T, origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
              extent=(0.0, seconds, 0.0, sample_rate / 2000.0))
    ax.set_title(title)
    ax.set_ylabel("kHz")
  axes[-1].set_xlabel("seconds")
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  plt.close(fig)
