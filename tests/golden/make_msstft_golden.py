"""Golden outputs of EnCodec's MS-STFT discriminator (encodec/msstftd.py).

The official module builds its spectrogram with torchaudio.transforms.Spectrogram, whose
wheels do not load against torch 2.13 here; a stand-in with torchaudio's documented semantics
(torch.stft without centring, periodic Hann window, `normalized=True` dividing by the window's
l2 norm, complex output [B, C, F, T]) is installed first, so the convolution stack is the
official one and the spectrogram is torch's. Weights from `zoo/convert/seeded.py`. Run as
make_dac_golden.py says:

  PYTHONPATH=/tmp/stubs /tmp/refvenv/bin/python tests/golden/make_msstft_golden.py

Writes msstft.npz (stereo audio [2, T, 2], each scale's logits NHWC and per-map mean, mean |x|,
max) and msstft_shapes.json ({key: shape}).
"""
import json
import pathlib
import types

import numpy as np
import torch

from golden_common import load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
KWARGS = dict(filters=8, in_channels=2, n_ffts=[256, 128], hop_lengths=[64, 32],
              win_lengths=[256, 128])
LENGTH = 2050


class Spectrogram(torch.nn.Module):
  def __init__(self, n_fft, hop_length, win_length, window_fn, normalized, center, pad_mode,
               power):
    super().__init__()
    assert power is None and not center and normalized
    self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
    self.register_buffer("window", window_fn(win_length))

  def forward(self, x):
    shape = x.shape
    spec = torch.stft(x.reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length,
                      self.window, center=False, return_complex=True)
    spec = spec / self.window.pow(2.0).sum().sqrt()
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def main():
  import torchaudio  # the stand-in package: give it the one class the discriminator uses
  torchaudio.transforms = types.SimpleNamespace(Spectrogram=Spectrogram)
  from encodec.msstftd import MultiScaleSTFTDiscriminator
  seeded = load_seeded_module()
  disc = MultiScaleSTFTDiscriminator(**KWARGS).eval()
  shapes = {k: list(v.shape) for k, v in disc.state_dict().items()}
  weights = seeded.codec_state_dict(shapes, 0)
  for k in weights:  # torchaudio's window buffers stay the Hann window they are
    if k.endswith("spec_transform.window"):
      weights[k] = torch.hann_window(shapes[k][0]).numpy()
  disc.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
  t = np.arange(LENGTH) / 8000
  audio = np.stack([np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 900 * t)], -1),
                    np.random.default_rng(0).uniform(-0.5, 0.5, (LENGTH, 2))]).astype(np.float32)
  with torch.no_grad():
    logits, fmaps = disc(torch.from_numpy(audio.transpose(0, 2, 1).copy()))
  out = {"audio": audio}
  for d, (logit, maps) in enumerate(zip(logits, fmaps)):
    out[f"d{d}_logits"] = logit.numpy().transpose(0, 2, 3, 1)
    out[f"d{d}_stats"] = np.array([[m.mean().item(), m.abs().mean().item(), m.max().item()]
                                   for m in maps + [logit]])
  np.savez_compressed(HERE / "msstft.npz", **out)
  (HERE / "msstft_shapes.json").write_text(json.dumps({"kwargs": KWARGS, "shapes": shapes},
                                                      sort_keys=True) + "\n")
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main()
