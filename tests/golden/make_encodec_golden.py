"""Golden outputs of the official EnCodec (`encodec` package, encodec/model.py).

Two small models in the official key layout, weights and buffers from `zoo/convert/seeded.py`
(`codec_state_dict`; codebooks marked initialised): a causal weight-norm one like
encodec_24khz, and a non-causal time_group_norm one with normalisation and 1 s segments like
encodec_48khz. Run in a venv with torch and encodec (see make_dac_golden.py):

  PYTHONPATH=/tmp/stubs /tmp/refvenv/bin/python tests/golden/make_encodec_golden.py

Writes encodec.npz (audio, codes, decoded audio, forward output for both models; one EMA
training step of an EuclideanCodebook), encodec_golden_shapes.json ({model: {key: shape}})
and encodec_official_shapes.json (the released models' {key: shape}, from the official
constructors without weights).
"""
import json
import pathlib

import numpy as np
import torch

from golden_common import load_seeded_module

HERE = pathlib.Path(__file__).resolve().parent
SMALL = dict(n_filters=4, ratios=[4, 2], dimension=16)
N_Q, BINS = 4, 32


def build(causal: bool, norm: str, channels: int, sample_rate: int, normalize: bool,
          segment):
  from encodec import EncodecModel
  from encodec.modules import SEANetDecoder, SEANetEncoder
  from encodec.quantization import ResidualVectorQuantizer
  encoder = SEANetEncoder(channels=channels, norm=norm, causal=causal, **SMALL)
  decoder = SEANetDecoder(channels=channels, norm=norm, causal=causal, **SMALL)
  quantizer = ResidualVectorQuantizer(dimension=SMALL["dimension"], n_q=N_Q, bins=BINS)
  return EncodecModel(encoder, decoder, quantizer, [12.0], sample_rate, channels,
                      normalize=normalize, segment=segment).eval()


def load_seeded(model, seeded, seed):
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
  weights = seeded.codec_state_dict(shapes, seed)
  for k in weights:
    if k.endswith("inited"):
      weights[k] = np.ones_like(weights[k])
    if k.endswith("cluster_size"):
      weights[k] = np.abs(weights[k]) + 1.0
  model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
  return shapes


def clip(length, channels, rate, seed):
  rng = np.random.default_rng(seed)
  t = np.arange(length) / rate
  x = np.stack([np.sin(2 * np.pi * (300 + 200 * c) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * t))
                + 0.1 * rng.normal(size=length) for c in range(channels)], axis=-1)
  return (0.8 * x / np.abs(x).max()).astype(np.float32)[None].repeat(2, 0) * np.array(
      [1.0, 0.5], np.float32)[:, None, None]


def main():
  seeded = load_seeded_module()
  torch.manual_seed(0)
  out, shapes = {}, {}
  for name, kwargs, length in (
      ("causal", dict(causal=True, norm="weight_norm", channels=1, sample_rate=16000,
                      normalize=False, segment=None), 1000),
      ("segmented", dict(causal=False, norm="time_group_norm", channels=2, sample_rate=4000,
                         normalize=True, segment=1.0), 6100)):
    model = build(**kwargs)
    shapes[name] = load_seeded(model, seeded, seed=1 if name == "causal" else 2)
    audio = clip(length, kwargs["channels"], kwargs["sample_rate"], seed=3)
    x = torch.from_numpy(audio.transpose(0, 2, 1).copy())
    with torch.no_grad():
      frames = model.encode(x)
      decoded = model.decode(frames)
      forward = model(x)
    out[f"{name}_audio"] = audio
    out[f"{name}_num_segments"] = np.array(len(frames))
    for i, (codes, scale) in enumerate(frames):
      out[f"{name}_codes_{i}"] = codes.numpy().transpose(0, 2, 1)  # [B, T, K]
      if scale is not None:
        out[f"{name}_scale_{i}"] = scale.numpy()
    out[f"{name}_decoded"] = decoded.numpy().transpose(0, 2, 1)
    out[f"{name}_forward"] = forward.numpy().transpose(0, 2, 1)

  from encodec.quantization.core_vq import EuclideanCodebook
  book = EuclideanCodebook(dim=8, codebook_size=16, kmeans_init=False, decay=0.99)
  rng = np.random.default_rng(5)
  embed = rng.normal(size=(16, 8)).astype(np.float32)
  book.embed.copy_(torch.from_numpy(embed))
  book.embed_avg.copy_(torch.from_numpy(embed * 3.0))
  book.cluster_size.copy_(torch.from_numpy(rng.uniform(0.5, 6.0, 16).astype(np.float32)))
  before = {k: v.numpy().copy() for k, v in book.state_dict().items()}
  data = rng.normal(size=(2, 20, 8)).astype(np.float32)
  book.train()
  with torch.no_grad():
    quantize, ids = book(torch.from_numpy(data))
  out.update({f"ema_before_{k}": v for k, v in before.items()})
  out.update({f"ema_after_{k}": v.numpy() for k, v in book.state_dict().items()})
  out.update(ema_data=data, ema_quantize=quantize.numpy(), ema_ids=ids.numpy())
  np.savez_compressed(HERE / "encodec.npz", **out)
  (HERE / "encodec_golden_shapes.json").write_text(json.dumps(shapes, sort_keys=True) + "\n")

  from encodec import EncodecModel
  released = {}
  for name, ctor in (("encodec_24khz", EncodecModel.encodec_model_24khz),
                     ("encodec_48khz", EncodecModel.encodec_model_48khz)):
    model = ctor(pretrained=False)
    released[name] = {"shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
                      "num_params": int(sum(p.numel() for p in model.parameters()))}
  (HERE / "encodec_official_shapes.json").write_text(json.dumps(released, sort_keys=True) + "\n")
  print({k: v.shape for k, v in out.items() if "codes" in k}, {k: v["num_params"]
                                                                for k, v in released.items()})


if __name__ == "__main__":
  main()
