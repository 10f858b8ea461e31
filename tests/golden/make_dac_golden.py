"""Golden outputs of the official DAC (descript-audio-codec, `dac.model.dac.DAC`).

A small DAC in the official key layout gets weights from `zoo/convert/seeded.py`
(`codec_state_dict`), so tests/test_dac.py rebuilds them with numpy from the saved
{key: shape} table. Run in a venv with torch and descript-audio-codec (no jax needed):

  python3.11 -m venv /tmp/refvenv
  /tmp/refvenv/bin/pip install torch==2.13.0 descript-audio-codec
  # torchaudio wheels may not load against torch 2.13: a package named torchaudio that
  # defines nothing, first on PYTHONPATH, satisfies audiotools' import (never called here).
  PYTHONPATH=/tmp/stubs /tmp/refvenv/bin/python tests/golden/make_dac_golden.py

Writes, next to this file:
  dac.npz                 audio [2, T, 1] (T not a multiple of the hop); the official forward's
                          audio, codes [B, N, frames] and losses; codes and decode with 2 levels
  dac_golden_shapes.json  {key: shape} of the small DAC behind dac.npz, and its kwargs
  dac_official_shapes.json  {dac_44khz|dac_24khz|dac_16khz: {"shapes": {key: shape},
                          "kwargs": ..., "num_params": N}} of the released configurations
"""
import json
import pathlib

import numpy as np
import torch

from golden_common import load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
GOLDEN_KWARGS = dict(encoder_dim=4, encoder_rates=[2, 4], latent_dim=16, decoder_dim=16,
                     decoder_rates=[4, 2], n_codebooks=4, codebook_size=16, codebook_dim=4,
                     quantizer_dropout=0.0, sample_rate=16000)
RELEASED = {
    "dac_44khz": dict(encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], n_codebooks=9,
                      sample_rate=44100),
    "dac_24khz": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=32,
                      sample_rate=24000),
    "dac_16khz": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=12,
                      sample_rate=16000),
}
LENGTH = 1003  # not a multiple of the hop (8): the official preprocess pads it


def golden_audio(length: int) -> np.ndarray:
  """Two clips: a chirp with harmonics and a noisy two-tone, peak 0.9: float32 [2, T, 1]."""
  t = np.arange(length) / 16000.0
  chirp = np.sin(2 * np.pi * (200 * t + 4000 * t ** 2)) + 0.3 * np.sin(2 * np.pi * 900 * t)
  rng = np.random.default_rng(0)
  tones = np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t) + 0.2 * rng.normal(size=length)
  audio = np.stack([chirp, tones])
  return (0.9 * audio / np.abs(audio).max(axis=1, keepdims=True)).astype(np.float32)[..., None]


def main():
  from dac.model.dac import DAC
  seeded = load_seeded_module()
  torch.manual_seed(SEED)
  model = DAC(**GOLDEN_KWARGS).eval()
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
  weights = seeded.codec_state_dict(shapes, SEED)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
  audio = golden_audio(LENGTH)
  x = torch.from_numpy(audio.transpose(0, 2, 1))
  with torch.no_grad():
    out = model(x)
    padded = model.preprocess(x, 16000)
    _, codes2, *_ = model.encode(padded, n_quantizers=2)
    z2, _, _ = model.quantizer.from_codes(codes2)
    decoded2 = model.decode(z2)
  model.train()  # the quantizer's training forward (dropout 0: every level kept)
  with torch.no_grad():
    z = model.encoder(padded)
    train_out = model.quantizer(z)
  np.savez_compressed(
      HERE / "dac.npz", audio=audio,
      recon=out["audio"].numpy().transpose(0, 2, 1), codes=out["codes"].numpy(),
      commitment_loss=out["vq/commitment_loss"].numpy(),
      codebook_loss=out["vq/codebook_loss"].numpy(),
      codes2=codes2.numpy(), decoded2=decoded2.numpy().transpose(0, 2, 1),
      train_commitment_loss=train_out[3].numpy(), train_codebook_loss=train_out[4].numpy())
  (HERE / "dac_golden_shapes.json").write_text(json.dumps(
      {"kwargs": GOLDEN_KWARGS, "shapes": shapes}, indent=1, sort_keys=True) + "\n")
  released = {}
  for name, kwargs in RELEASED.items():
    big = DAC(**kwargs)
    released[name] = {
        "kwargs": kwargs,
        "shapes": {k: list(v.shape) for k, v in big.state_dict().items()},
        "num_params": int(sum(p.numel() for p in big.parameters())),
    }
  (HERE / "dac_official_shapes.json").write_text(json.dumps(released, sort_keys=True) + "\n")
  print({k: v["num_params"] for k, v in released.items()})


if __name__ == "__main__":
  main()
