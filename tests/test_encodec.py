"""EnCodec: same codes and audio as the official `encodec` package on seeded weights, the
released key layouts, streaming, and the EMA codebook's training step.

Goldens come from tests/golden/make_encodec_golden.py; here the same weights are rebuilt from
the saved key/shape tables and loaded through the converter.
"""
import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import zoo
from models.audio.encodec import Encodec, EncodecConfig
from models.audio.seanet import SEANetConfig
from models.quantizers.ema_vq import EMACodebook, kmeans
from zoo.convert import encodec as convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import codec_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
SHAPES = json.loads((GOLDEN / "encodec_golden_shapes.json").read_text())
OFFICIAL = json.loads((GOLDEN / "encodec_official_shapes.json").read_text())
G = np.load(GOLDEN / "encodec.npz")
SMALL = dict(n_filters=4, ratios=(4, 2), dimension=16)
CONFIGS = {
    "causal": EncodecConfig(sample_rate=16000, channels=1, n_q=4, bins=32,
                            seanet=SEANetConfig(channels=1, causal=True, **SMALL)),
    "segmented": EncodecConfig(sample_rate=4000, channels=2, n_q=4, bins=32, normalize=True,
                               segment=1.0, seanet=SEANetConfig(channels=2, causal=False,
                                                                norm="time_group_norm", **SMALL)),
}


def golden_weights(name):
  weights = codec_state_dict({k: tuple(v) for k, v in SHAPES[name].items()},
                             seed=1 if name == "causal" else 2)
  for k in weights:  # as the golden script: initialised codebooks, positive cluster sizes
    if k.endswith("inited"):
      weights[k] = np.ones_like(weights[k])
    if k.endswith("cluster_size"):
      weights[k] = np.abs(weights[k]) + 1.0
  return weights


def golden_model(name):
  model = nnx.eval_shape(lambda: Encodec(CONFIGS[name], rngs=nnx.Rngs(0)))
  convert.load_state_dict(model, golden_weights(name), model_name=f"encodec_{name}")
  return model


@pytest.fixture(scope="module")
def causal():
  return golden_model("causal")


def test_causal_model_matches_official(causal):
  audio = G["causal_audio"]
  ids = causal.encode(audio)
  np.testing.assert_array_equal(np.asarray(ids), G["causal_codes_0"])
  np.testing.assert_allclose(causal.decode(ids), G["causal_decoded"], atol=1e-4)
  np.testing.assert_allclose(causal(audio)["recon"], G["causal_forward"], atol=1e-4)


def test_segmented_normalised_model_matches_official():
  model = golden_model("segmented")
  frames = model.encode(G["segmented_audio"])
  assert len(frames) == int(G["segmented_num_segments"]) == 2
  for i, (ids, scale) in enumerate(frames):
    np.testing.assert_array_equal(np.asarray(ids), G[f"segmented_codes_{i}"])
    np.testing.assert_allclose(scale, G[f"segmented_scale_{i}"], rtol=1e-5)
  np.testing.assert_allclose(model.decode(frames), G["segmented_decoded"], atol=1e-4)


def test_streaming_equals_one_shot(causal):
  """Chunks of whole frames (the first one long enough for its reflect padding) give the
  one-shot codes, and streaming decode the one-shot audio."""
  audio = G["causal_audio"][:, :960]  # 120 frames of 8 samples
  want_ids = np.asarray(causal.encode(audio))
  state, got = None, []
  for start, end in ((0, 80), (80, 88), (88, 960)):
    state, ids = causal.stream_encode(state, audio[:, start:end])
    got.append(np.asarray(ids))
  np.testing.assert_array_equal(np.concatenate(got, axis=1), want_ids)
  state, pieces = None, []
  for start, end in ((0, 10), (10, 11), (11, 120)):
    state, chunk = causal.stream_decode(state, want_ids[:, start:end])
    pieces.append(np.asarray(chunk))
  np.testing.assert_allclose(np.concatenate(pieces, axis=1), causal.decode(want_ids), atol=1e-5)
  with pytest.raises(ValueError, match="whole frames of 8 samples"):
    causal.stream_encode(None, audio[:, :100])
  with pytest.raises(ValueError, match="only causal"):
    golden_model("segmented").stream_encode(None, np.zeros((1, 80, 2), np.float32))


def test_ema_training_step_matches_official():
  book = EMACodebook(8, 16, kmeans_init=False, rngs=nnx.Rngs(0))
  for name in ("inited", "cluster_size", "embed", "embed_avg"):
    getattr(book, name)[...] = jnp.asarray(G[f"ema_before_{name}"])
  z_q, aux = book(G["ema_data"], train=True, rngs=nnx.Rngs(sample=0))
  np.testing.assert_array_equal(np.asarray(aux["ids"]), G["ema_ids"])
  np.testing.assert_allclose(z_q, G["ema_quantize"], atol=1e-6)
  for name in ("cluster_size", "embed", "embed_avg"):
    np.testing.assert_allclose(getattr(book, name)[...], G[f"ema_after_{name}"], rtol=1e-5,
                               atol=1e-6, err_msg=name)


def test_kmeans_initialises_on_the_first_training_batch():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(4, 2)) * 10
  data = (centres[rng.integers(0, 4, 400)] + 0.1 * rng.normal(size=(400, 2))).astype(np.float32)
  means, counts = kmeans(jax.random.key(0), jnp.asarray(data), 4, 20)
  assign = np.argmin(((data[:, None] - np.asarray(means)[None]) ** 2).sum(-1), axis=1)
  for k in range(4):  # converged Lloyd: every centroid is the mean of its points
    np.testing.assert_allclose(means[k], data[assign == k].mean(0), atol=1e-4)
  np.testing.assert_array_equal(counts, np.bincount(assign, minlength=4))
  book = EMACodebook(2, 4, kmeans_iters=20, rngs=nnx.Rngs(0))
  assert float(book.inited[...][0]) == 0.0
  _, aux = book(data.reshape(4, 100, 2), train=True, rngs=nnx.Rngs(sample=1))
  assert float(book.inited[...][0]) == 1.0
  ids = np.asarray(aux["ids"]).reshape(-1)  # the first batch is quantized with its k-means
  np.testing.assert_allclose(float(book.cluster_size[...].sum()), 400, rtol=1e-5)
  # As the original: embed_avg starts at the means (not sums), so the first EMA step scales
  # each code by (0.99 + 0.01 n) / n, n its (smoothed) cluster size.
  n = np.asarray(book.cluster_size[...])
  direction = np.asarray(book.embed[...]) * n[:, None] / (0.99 + 0.01 * n[:, None])
  for k in np.unique(ids):
    np.testing.assert_allclose(direction[k], data[ids == k].mean(0), rtol=1e-3, atol=1e-3)


def test_persistent_expiry_replaces_dead_codes():
  book = EMACodebook(2, 8, kmeans_init=False, persistent_expiry=True, rngs=nnx.Rngs(0))
  book.cluster_size[...] = jnp.array([5.0] * 4 + [0.0] * 4)
  data = np.full((1, 16, 2), 7.0, np.float32)
  book(data, train=True, rngs=nnx.Rngs(sample=0))
  np.testing.assert_allclose(book.embed[...][4:], 7.0)  # dead codes now sit on the data
  faithful = EMACodebook(2, 8, kmeans_init=False, rngs=nnx.Rngs(0))
  faithful.cluster_size[...] = jnp.array([5.0] * 4 + [0.0] * 4)
  faithful(data, train=True, rngs=nnx.Rngs(sample=0))
  assert not np.allclose(faithful.embed[...][4:], 7.0)  # the original's no-op expiry


@pytest.mark.parametrize("name", ["encodec_24khz", "encodec_48khz"])
def test_released_tables_match_official_state_dicts(name):
  model = nnx.eval_shape(lambda: zoo.create(name))
  expected = expected_torch_shapes(model, convert.table(model.config))
  assert expected == {k: tuple(v) for k, v in OFFICIAL[name]["shapes"].items()}
  params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert params == OFFICIAL[name]["num_params"]


def test_from_pretrained_th_file_and_errors(tmp_path):
  cfg = zoo.registry.get("encodec_tiny").config
  shapes = expected_torch_shapes(nnx.eval_shape(lambda: Encodec(cfg, rngs=nnx.Rngs(0))),
                                 convert.table(cfg))
  weights = codec_state_dict(shapes, seed=4)
  path = tmp_path / "encodec_tiny-0000.th"
  torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, path)
  model = zoo.from_pretrained("encodec_tiny", checkpoint=str(path))
  np.testing.assert_array_equal(model.quantizer.levels[2].embed[...],
                                weights["quantizer.vq.layers.2._codebook.embed"])
  del weights["encoder.model.0.conv.conv.weight_v"]
  torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, path)
  with pytest.raises(CheckpointMismatchError, match=r"missing .*encoder\.model\.0\.conv\.conv"):
    zoo.from_pretrained("encodec_tiny", checkpoint=str(path))
  with pytest.raises(ValueError, match="download https://dl.fbaipublicfiles.com"):
    zoo.from_pretrained("encodec_24khz")


def test_bandwidths_bad_audio_and_training_forward():
  model = zoo.create("encodec_24khz")
  assert [model.levels_for_bandwidth(b) for b in (1.5, 3, 6, 12, 24)] == [2, 4, 8, 16, 32]
  assert model.bitrate(8) == 6000.0
  with pytest.raises(ValueError, match="not one of"):
    model.levels_for_bandwidth(5.0)
  tiny = zoo.create("encodec_tiny")
  with pytest.raises(ValueError, match="at 24000 Hz but the model expects 16000 Hz"):
    tiny.encode(np.zeros((1, 80, 1), np.float32), sample_rate=24000)
  with pytest.raises(ValueError, match=r"1 channel\(s\)"):
    tiny.encode(np.zeros((1, 80, 2), np.float32))
  out = tiny(np.random.default_rng(0).uniform(-.5, .5, (2, 160, 1)).astype(np.float32),
             train=True, rngs=nnx.Rngs(sample=0))
  assert out["recon"].shape == (2, 160, 1) and float(tiny.quantizer.levels[0].inited[...][0]) == 1
  assert float(out["commitment_loss"]) > 0 and float(out["codebook_loss"]) == 0
  assert dataclasses.is_dataclass(tiny.config)
