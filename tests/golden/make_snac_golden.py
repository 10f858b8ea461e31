"""Golden outputs of the official SNAC (the `snac` package 1.2.1, snac/snac.py).

Two small SNACs in the official key layout get weights from `zoo/convert/seeded.py`
(`codec_state_dict`; the rotary `inv_freq` buffers keep their computed values; the output
conv's gain times OUTPUT_GAIN), so
tests/test_snac.py rebuilds them with numpy from the saved key/shape tables:
  full:  depthwise convs, local attention (window 4, heads of 64), noise blocks, an odd stride
  plain: none of those (groups 1, no attention, no noise), vq strides (2, 1)
The NoiseBlocks call torch.randn; here torch.randn is replaced by a queue of numpy normals
saved in the npz, so the test feeds our decoder the same noise ("noise_*"), and by zeros for
the noise-free outputs ("*_quiet"), which our `decode(ids)` (no noise key) must match.
Run in a venv with torch and snac (see make_dac_golden.py):

  /tmp/refvenv/bin/python tests/golden/make_snac_golden.py

Writes, next to this file:
  snac.npz                  audio [2, T, 1] (T not a multiple of the pad length); per model:
                            codes per level, forward audio with the saved noise and quiet,
                            the decoder output from the first 2 levels (quiet)
  snac_golden_shapes.json   {full|plain: {"kwargs", "shapes": {param: shape}, "buffers"}}
  snac_official_shapes.json {snac_24khz|snac_32khz|snac_44khz: {"config", "shapes",
                            "buffers", "num_params"}} from SNAC(**config.json)
"""
import contextlib
import json
import pathlib

import numpy as np
import torch

from golden_common import load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
SMALL = {
    "full": dict(sampling_rate=16000, encoder_dim=16, encoder_rates=[2, 3], decoder_dim=64,
                 decoder_rates=[3, 2], attn_window_size=4, codebook_size=32, codebook_dim=4,
                 vq_strides=[4, 2, 1], noise=True, depthwise=True),
    "plain": dict(sampling_rate=16000, encoder_dim=4, encoder_rates=[2, 3], decoder_dim=16,
                  decoder_rates=[3, 2], attn_window_size=None, codebook_size=16,
                  codebook_dim=4, vq_strides=[2, 1], noise=False, depthwise=False),
}
# The released config.json files (hubertsiuzdak/snac_24khz, snac_32khz, snac_44khz).
RELEASED = {
    "snac_24khz": dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8],
                       decoder_dim=1024, decoder_rates=[8, 8, 4, 2], attn_window_size=None,
                       codebook_size=4096, codebook_dim=8, vq_strides=[4, 2, 1], noise=True,
                       depthwise=True),
    "snac_32khz": dict(sampling_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8],
                       decoder_dim=1536, decoder_rates=[8, 8, 3, 2], attn_window_size=32,
                       codebook_size=4096, codebook_dim=8, vq_strides=[8, 4, 2, 1],
                       noise=True, depthwise=True),
    "snac_44khz": dict(sampling_rate=44100, encoder_dim=64, encoder_rates=[2, 3, 8, 8],
                       decoder_dim=1536, decoder_rates=[8, 8, 3, 2], attn_window_size=32,
                       codebook_size=4096, codebook_dim=8, vq_strides=[8, 4, 2, 1],
                       noise=True, depthwise=True),
}
# The seeded decoders end far beyond tanh's range; the last conv's gain is scaled down so that
# the outputs are not saturated (a saturated tanh would hide differences).
OUTPUT_GAIN = 0.02
LENGTH = 1003  # not a multiple of the pad length (24 for "full", 12 for "plain")


def golden_audio(length: int) -> np.ndarray:
  """A chirp with a harmonic and a noisy amplitude-modulated tone, peak 0.9: [2, T, 1]."""
  t = np.arange(length) / 16000.0
  chirp = np.sin(2 * np.pi * (200 * t + 4000 * t ** 2)) + 0.3 * np.sin(2 * np.pi * 900 * t)
  rng = np.random.default_rng(0)
  tones = np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t) + 0.2 * rng.normal(size=length)
  audio = np.stack([chirp, tones])
  return (0.9 * audio / np.abs(audio).max(axis=1, keepdims=True)).astype(np.float32)[..., None]


@contextlib.contextmanager
def patched_randn(draw):
  """torch.randn -> draw(shape) (the NoiseBlocks are its only callers in a forward)."""
  original = torch.randn
  torch.randn = lambda shape, **kwargs: torch.from_numpy(draw(tuple(shape)))
  try:
    yield
  finally:
    torch.randn = original


def split_state(model):
  """(params {name: shape}, buffers {name: array}): inv_freq is a persistent buffer."""
  params = {n for n, _ in model.named_parameters()}
  state = model.state_dict()
  shapes = {k: list(v.shape) for k, v in state.items() if k in params}
  buffers = {k: v.numpy() for k, v in state.items() if k not in params}
  return shapes, buffers


def last_decoder_gain(shapes) -> str:
  """The weight-norm gain of the decoder's output conv (decoder.model.<last>)."""
  gains = [k for k in shapes if k.startswith("decoder.model.") and k.endswith("original0")]
  return max(gains, key=lambda k: int(k.split(".")[2]))


def run_small(name, kwargs, seeded, audio, out):
  from snac import SNAC
  torch.manual_seed(SEED)
  model = SNAC(**kwargs).eval()
  shapes, buffers = split_state(model)
  weights = seeded.codec_state_dict(shapes, SEED)
  gain_key = last_decoder_gain(shapes)
  weights[gain_key] = weights[gain_key] * np.float32(OUTPUT_GAIN)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in {**weights, **buffers}.items()})
  x = torch.from_numpy(audio.transpose(0, 2, 1))
  rng = np.random.default_rng(7)
  noises = []

  def normal(shape):
    noises.append(rng.standard_normal(shape).astype(np.float32))
    return noises[-1]

  with torch.no_grad():
    with patched_randn(normal):
      recon, codes = model(x)
    with patched_randn(lambda shape: np.zeros(shape, np.float32)):
      recon_quiet, _ = model(x)
      quantizers = model.quantizer.quantizers[:2]  # from_codes of the first 2 levels only
      z2 = sum(q.out_proj(q.decode_code(c)).repeat_interleave(q.stride, dim=-1)
               for q, c in zip(quantizers, codes))
      decoded2 = model.decoder(z2)
  out[f"{name}_recon_noise"] = recon.numpy().transpose(0, 2, 1)
  out[f"{name}_recon_quiet"] = recon_quiet.numpy().transpose(0, 2, 1)
  out[f"{name}_decoded2_quiet"] = decoded2.numpy().transpose(0, 2, 1)
  for level, c in enumerate(codes):
    out[f"{name}_codes_{level}"] = c.numpy().astype(np.int32)
  for i, n in enumerate(noises):
    out[f"{name}_noise_{i}"] = n.transpose(0, 2, 1)  # [B, 1, T] -> ours [B, T, 1]
  return {"kwargs": kwargs, "shapes": shapes, "output_gain": [gain_key, OUTPUT_GAIN],
          "buffers": {k: list(v.shape) for k, v in buffers.items()}}


def main():
  from snac import SNAC
  seeded = load_seeded_module()
  audio = golden_audio(LENGTH)
  out = {"audio": audio}
  specs = {name: run_small(name, kwargs, seeded, audio, out) for name, kwargs in SMALL.items()}
  np.savez_compressed(HERE / "snac.npz", **out)
  (HERE / "snac_golden_shapes.json").write_text(
      json.dumps(specs, indent=1, sort_keys=True) + "\n")
  released = {}
  for name, config in RELEASED.items():
    model = SNAC(**config)
    shapes, buffers = split_state(model)
    released[name] = {
        "config": config, "shapes": shapes,
        "buffers": {k: list(v.shape) for k, v in buffers.items()},
        "num_params": int(sum(p.numel() for p in model.parameters())),
    }
  (HERE / "snac_official_shapes.json").write_text(json.dumps(released, sort_keys=True) + "\n")
  print({k: v["num_params"] for k, v in released.items()},
        {k: float(np.abs(v).max()) for k, v in out.items() if "recon" in k})


if __name__ == "__main__":
  main()
