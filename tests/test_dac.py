"""DAC: same codes and audio as the official descript-audio-codec on seeded weights.

Goldens come from tests/golden/make_dac_golden.py (the official `dac.model.dac.DAC` on weights
from zoo.convert.seeded); here the same weights are rebuilt from the saved key/shape table and
loaded through the converter, so a wrong name, layout, padding or crop changes the outputs.
"""
import json
import pathlib

import numpy as np
import pytest
import torch
from flax import nnx

import zoo
import zoo.registry
from models.audio.dac import DAC
from zoo.convert import dac as convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import codec_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
GOLDEN_SPEC = json.loads((GOLDEN / "dac_golden_shapes.json").read_text())
OFFICIAL = json.loads((GOLDEN / "dac_official_shapes.json").read_text())
G = np.load(GOLDEN / "dac.npz")


def golden_weights():
  return codec_state_dict({k: tuple(v) for k, v in GOLDEN_SPEC["shapes"].items()}, seed=0)


@pytest.fixture(scope="module")
def golden_model():
  cfg = convert.config_from_metadata(GOLDEN_SPEC["kwargs"])
  model = nnx.eval_shape(lambda: DAC(cfg, rngs=nnx.Rngs(0)))
  convert.load_state_dict(model, golden_weights(), model_name="dac_golden")
  return model


def test_forward_matches_official(golden_model):
  out = golden_model(G["audio"])
  assert out["recon"].shape == G["audio"].shape  # cropped back from the padded length
  np.testing.assert_array_equal(np.asarray(out["ids"]), G["codes"].transpose(0, 2, 1))
  np.testing.assert_allclose(out["recon"], G["recon"], atol=1e-4)
  np.testing.assert_allclose(out["commitment_loss"], G["commitment_loss"], rtol=1e-4)
  np.testing.assert_allclose(out["codebook_loss"], G["codebook_loss"], rtol=1e-4)


def test_two_levels_encode_decode_match_official(golden_model):
  ids = golden_model.encode(G["audio"], num_levels=2)
  np.testing.assert_array_equal(np.asarray(ids), G["codes2"].transpose(0, 2, 1))
  np.testing.assert_allclose(golden_model.decode(ids), G["decoded2"], atol=1e-4)


def test_training_losses_match_official_quantizer(golden_model):
  """Dropout 0 in training keeps every level: the losses of the official training forward."""
  out = golden_model(G["audio"], train=True, rngs=nnx.Rngs(sample=0))
  np.testing.assert_allclose(out["commitment_loss"], G["train_commitment_loss"], rtol=1e-4)
  np.testing.assert_allclose(out["codebook_loss"], G["train_codebook_loss"], rtol=1e-4)


@pytest.mark.parametrize("name", ["dac_44khz", "dac_24khz", "dac_16khz"])
def test_released_tables_match_official_state_dicts(name):
  official = OFFICIAL[name]
  model = nnx.eval_shape(lambda: zoo.create(name))
  expected = expected_torch_shapes(model, convert.table(model.config))
  assert expected == {k: tuple(v) for k, v in official["shapes"].items()}
  assert sum(int(np.prod(s)) for s in expected.values()) == official["num_params"]


def _save_release(path, weights, kwargs):
  torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in weights.items()},
              "metadata": {"kwargs": kwargs}}, path)


def test_from_pretrained_reads_architecture_from_metadata(tmp_path):
  """A file whose kwargs are not a registered release (e.g. one's own run) loads by metadata."""
  path = tmp_path / "weights.pth"
  _save_release(path, golden_weights(), GOLDEN_SPEC["kwargs"])
  entry = zoo.registry.get("dac_tiny")
  cfg = entry.config_from_checkpoint(str(path), model_name="my_dac")
  assert cfg.encoder_rates == (2, 4) and cfg.n_codebooks == 4 and cfg.latent == 16
  model = nnx.eval_shape(lambda: DAC(cfg, rngs=nnx.Rngs(0)))
  entry.load_state_dict(model, entry.read_checkpoint(str(path), model_name="my_dac"),
                        model_name="my_dac")
  np.testing.assert_allclose(model(G["audio"])["recon"], G["recon"], atol=1e-4)


def test_from_pretrained_on_a_released_layout(tmp_path):
  """dac_44khz_16kbps's kwargs and key layout, seeded weights: from_pretrained end to end."""
  kwargs = dict(OFFICIAL["dac_44khz"]["kwargs"], latent_dim=128, n_codebooks=18)
  model = nnx.eval_shape(lambda: zoo.create("dac_44khz_16kbps"))
  expected = expected_torch_shapes(model, convert.table(model.config))
  quantizer = {k: v for k, v in expected.items() if k.startswith("quantizer.")}
  assert len(quantizer) == 18 * 7
  path = tmp_path / "weights_44khz_16kbps.pth"
  _save_release(path, codec_state_dict(expected, seed=1), kwargs)
  loaded = zoo.from_pretrained("dac_44khz_16kbps", checkpoint=str(path))
  assert loaded.config.latent == 128 and loaded.num_levels == 18
  assert loaded.bitrate() == pytest.approx(18 * 10 * 44100 / 512)


def test_released_name_must_match_its_file(tmp_path):
  path = tmp_path / "weights.pth"
  _save_release(path, golden_weights(), GOLDEN_SPEC["kwargs"])
  with pytest.raises(CheckpointMismatchError, match="is not dac_44khz: encoder_dim"):
    zoo.from_pretrained("dac_44khz", checkpoint=str(path))


def test_checkpoint_errors(tmp_path):
  no_meta = tmp_path / "plain.pth"
  torch.save({"state_dict": {}}, no_meta)
  with pytest.raises(ValueError, match="no metadata.kwargs"):
    zoo.from_pretrained("dac_tiny", checkpoint=str(no_meta))
  with pytest.raises(ValueError, match="download https://github.com/descriptinc"):
    zoo.from_pretrained("dac_44khz")
  weights = golden_weights()
  del weights["quantizer.quantizers.3.codebook.weight"]
  weights["decoder.extra.weight"] = np.zeros(3, np.float32)
  path = tmp_path / "broken.pth"
  _save_release(path, weights, GOLDEN_SPEC["kwargs"])
  cfg = convert.config_from_metadata(GOLDEN_SPEC["kwargs"])
  model = nnx.eval_shape(lambda: DAC(cfg, rngs=nnx.Rngs(0)))
  with pytest.raises(CheckpointMismatchError,
                     match=r"missing .*quantizers\.3\.codebook.*\n.*unexpected .*decoder\.extra"):
    convert.load_state_dict(model, convert.read_checkpoint(str(path), model_name="x"),
                            model_name="x")


def test_bad_audio_gets_clear_errors():
  model = zoo.create("dac_tiny")
  ok = np.zeros((1, 640, 1), np.float32)
  with pytest.raises(ValueError, match="at 44100 Hz but the model expects 16000 Hz"):
    model.encode(ok, sample_rate=44100)
  with pytest.raises(ValueError, match=r"1 channel\(s\).*is it \[B, C, T\]"):
    model.encode(np.zeros((1, 1, 640), np.float32))
  with pytest.raises(ValueError, match=r"\[-1, 1\]; got a peak of 2"):
    model.encode(2 * np.ones((1, 640, 1), np.float32))
  with pytest.raises(TypeError, match="int16 PCM"):
    model.encode(np.zeros((1, 640, 1), np.int16))
  with pytest.raises(ValueError, match="NaN"):
    model.encode(np.full((1, 640, 1), np.nan, np.float32))
  with pytest.raises(ValueError, match="num_levels must be in 1..6"):
    model.encode(ok, num_levels=7)


def test_quantizer_dropout_keeps_a_random_number_of_levels():
  model = zoo.create("dac_tiny")  # quantizer_dropout 0.5: half the batch drops levels
  audio = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 640, 1)).astype(np.float32)
  out = model(audio, train=True, rngs=nnx.Rngs(sample=3))
  assert float(out["stats"]["levels_kept"]) < model.num_levels
  assert float(model(audio)["stats"]["levels_kept"]) == model.num_levels
  assert model.bitrate() == pytest.approx(6 * 6 * 16000 / 64)
