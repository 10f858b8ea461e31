"""Golden outputs of DAC's discriminator (`dac.model.discriminator.Discriminator`).

A Discriminator with two periods and two FFT sizes at the official widths, weights from
`zoo/convert/seeded.py` (`codec_state_dict`), judges two short clips whose length is not a
multiple of any hop. Run as make_dac_golden.py says:

  PYTHONPATH=/tmp/stubs /tmp/refvenv/bin/python tests/golden/make_audio_discriminators_golden.py

Writes audio_discriminators.npz: the audio [2, T, 1]; per sub-discriminator d and map j the
logits (`d{d}_logits`, NHWC) and each feature map's mean, mean |x| and max
(`d{d}_stats` [maps, 3]); and audio_discriminators_shapes.json ({key: shape}, the kwargs).
"""
import json
import pathlib

import numpy as np
import torch

from golden_common import load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
KWARGS = dict(rates=[], periods=[2, 3], fft_sizes=[512, 256], sample_rate=16000)
LENGTH = 3203


def main():
  from dac.model.discriminator import Discriminator
  seeded = load_seeded_module()
  disc = Discriminator(**KWARGS).eval()
  shapes = {k: list(v.shape) for k, v in disc.state_dict().items()}
  weights = seeded.codec_state_dict(shapes, 0)
  disc.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
  t = np.arange(LENGTH) / 16000
  rng = np.random.default_rng(0)
  audio = np.stack([np.sin(2 * np.pi * 300 * t) + 0.3 * np.sin(2 * np.pi * 2500 * t),
                    rng.normal(size=LENGTH) * np.hanning(LENGTH)]).astype(np.float32)
  audio = 0.7 * audio / np.abs(audio).max(axis=1, keepdims=True)
  with torch.no_grad():
    outputs = disc(torch.from_numpy(audio[:, None]))
  out = {"audio": audio[..., None]}
  for d, maps in enumerate(outputs):
    out[f"d{d}_logits"] = maps[-1].numpy().transpose(0, 2, 3, 1)
    out[f"d{d}_stats"] = np.array([[m.mean().item(), m.abs().mean().item(), m.max().item()]
                                   for m in maps])
  np.savez_compressed(HERE / "audio_discriminators.npz", **out)
  (HERE / "audio_discriminators_shapes.json").write_text(json.dumps(
      {"kwargs": KWARGS, "shapes": shapes, "num_params": int(sum(p.numel() for p in
                                                                  disc.parameters()))},
      sort_keys=True) + "\n")
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main()
