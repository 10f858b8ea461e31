"""SNAC: same codes and audio as the official `snac` package on seeded weights.

Goldens come from tests/golden/make_snac_golden.py (the official SNAC on weights from
zoo.convert.seeded, torch.randn replaced by saved noise or zeros); here the same weights are
rebuilt from the saved key/shape tables and loaded through the converter, so a wrong name,
layout, padding, window or crop changes the outputs.
"""
import json
import pathlib

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import zoo
from models.audio.snac import SNAC
from zoo.convert import snac as convert
from zoo.convert.common import CheckpointMismatchError
from zoo.convert.seeded import codec_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
SPECS = json.loads((GOLDEN / "snac_golden_shapes.json").read_text())
OFFICIAL = json.loads((GOLDEN / "snac_official_shapes.json").read_text())
G = np.load(GOLDEN / "snac.npz")
AUDIO = G["audio"]
LENGTH = AUDIO.shape[1]


def golden_weights(name: str) -> dict:
  """The seeded weights of the golden script, with the same tamed output gain."""
  spec = SPECS[name]
  weights = codec_state_dict({k: tuple(v) for k, v in spec["shapes"].items()}, seed=0)
  key, gain = spec["output_gain"]
  weights[key] = weights[key] * np.float32(gain)
  return weights


def golden_config(name: str):
  return convert.config_from_json(SPECS[name]["kwargs"])


def load(name: str, weights: dict) -> SNAC:
  model = nnx.eval_shape(lambda: SNAC(golden_config(name), rngs=nnx.Rngs(0)))
  convert.load_state_dict(model, weights, model_name=f"snac_golden_{name}")
  return model


@pytest.fixture(scope="module")
def full():
  return load("full", golden_weights("full"))


def golden_codes(name: str) -> list:
  return [G[f"{name}_codes_{i}"] for i in range(len(SPECS[name]["kwargs"]["vq_strides"]))]


def golden_noise(name: str) -> list:
  return [G[k] for k in sorted(f for f in G.files if f.startswith(f"{name}_noise_"))]


def check_parity(model: SNAC, name: str):
  ids = model.encode(AUDIO)
  assert len(ids) == model.num_levels
  for level, (ours, theirs) in enumerate(zip(ids, golden_codes(name))):
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(ours), theirs, err_msg=f"level {level}")
  # The official decoder with torch.randn's draws replaced by the saved noise.
  noisy = model.decoder(model.quantizer.lookup(ids), golden_noise(name))[:, :LENGTH]
  np.testing.assert_allclose(noisy, G[f"{name}_recon_noise"], atol=1e-4)
  # Without noise: __call__ (cropped) and decode (the padded length) against zero noise.
  out = model(AUDIO)
  assert out["recon"].shape == AUDIO.shape
  np.testing.assert_allclose(out["recon"], G[f"{name}_recon_quiet"], atol=1e-4)
  np.testing.assert_allclose(model.decode(ids)[:, :LENGTH], G[f"{name}_recon_quiet"], atol=1e-4)
  np.testing.assert_allclose(model.decode(ids[:2]), G[f"{name}_decoded2_quiet"], atol=1e-4)


def test_full_model_matches_official(full):
  """Depthwise convs, local attention with rotary positions, noise blocks, an odd stride."""
  assert len(golden_noise("full")) == 2 and full.pad_multiple == 24
  check_parity(full, "full")


def test_plain_model_matches_official():
  """No depthwise convs, no attention, no noise; vq strides (2, 1)."""
  model = load("plain", golden_weights("plain"))
  assert not golden_noise("plain") and model.pad_multiple == 12
  check_parity(model, "plain")


def test_noise_comes_from_the_key(full):
  ids = tuple(np.asarray(c) for c in golden_codes("full"))  # the parity test's shapes: cached
  quiet = full.decode(ids)
  a, b = (full.decode(ids, noise_key=jax.random.key(1)) for _ in range(2))
  np.testing.assert_array_equal(a, b)
  assert float(np.abs(a - quiet).max()) > 1e-3
  assert float(np.abs(full.decode(ids, noise_key=jax.random.key(2)) - a).max()) > 1e-3
  assert full.decoder.noise_shapes(2, 168) == [(2, 504, 1), (2, 1008, 1)]
  with pytest.raises(ValueError, match="decoder noise must be"):
    full.decoder(full.quantizer.lookup(ids), [np.zeros((2, 504, 1))] * 2)


@pytest.mark.parametrize("name", ["snac_24khz", "snac_32khz", "snac_44khz"])
def test_released_tables_match_official_state_dicts(name):
  official = OFFICIAL[name]
  model = nnx.eval_shape(lambda: zoo.create(name))
  expected = convert.expected_shapes(model)
  assert expected == {k: tuple(v) for k, v in (official["shapes"] | official["buffers"]).items()}
  assert convert.config_from_json(official["config"]) == model.config
  num_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert num_params == official["num_params"]
  assert round(num_params / 1e6, 1) == {"snac_24khz": 19.8}.get(name, 54.5)  # the README


def test_released_rates():
  rates = {}
  for name in ("snac_24khz", "snac_32khz", "snac_44khz"):
    model = nnx.eval_shape(lambda n=name: zoo.create(n))
    rates[name] = (model.hop_length, round(model.bitrate() / 1000, 2), model.num_levels)
  assert rates == {"snac_24khz": (512, 0.98, 3), "snac_32khz": (384, 1.88, 4),
                   "snac_44khz": (384, 2.58, 4)}
  assert model.level_rates() == pytest.approx([44100 / 384 / s for s in (8, 4, 2, 1)])
  assert model.bitrate(1) == pytest.approx(12 * 44100 / 384 / 8)
  with pytest.raises(ValueError, match="num_levels must be in 1..4"):
    model.bitrate(5)


def write_repo(path: pathlib.Path, config: dict, weights: dict):
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(json.dumps(config))
  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()},
             path / "pytorch_model.bin")


def rotary(name: str) -> dict:
  return convert.rotary_buffers(golden_config(name))


def test_from_pretrained_on_a_repo_dir_with_legacy_names(tmp_path):
  """A HF-style dir; weight norm saved the legacy way (weight_g / weight_v), buffers kept."""
  legacy = {k.replace(convert.GAIN, "weight_g").replace(convert.DIRECTION, "weight_v"): v
            for k, v in golden_weights("full").items()}
  assert any(k.endswith("weight_g") for k in legacy) and len(rotary("full")) == 2
  write_repo(tmp_path / "snac", SPECS["full"]["kwargs"], legacy | rotary("full"))
  cfg = golden_config("full")  # not a released name: snac_tiny with the golden architecture
  overrides = {f: getattr(cfg, f) for f in convert.JSON_FIELDS.values()} | {"attn_head_dim": 64,
                                                                           "quantizer_dropout": 0.0}
  model = zoo.from_pretrained("snac_tiny", checkpoint=str(tmp_path / "snac"), **overrides)
  np.testing.assert_allclose(model(AUDIO)["recon"], G["full_recon_quiet"], atol=1e-4)


def test_from_pretrained_on_a_released_layout(tmp_path):
  """snac_24khz's config.json and key layout with seeded weights, end to end."""
  official = OFFICIAL["snac_24khz"]
  weights = codec_state_dict({k: tuple(v) for k, v in official["shapes"].items()}, seed=1)
  write_repo(tmp_path / "snac_24khz", official["config"], weights)
  model = zoo.from_pretrained("snac_24khz", checkpoint=str(tmp_path / "snac_24khz"))
  level = model.quantizer.levels[2]
  np.testing.assert_array_equal(level.codebook[...],
                                weights["quantizer.quantizers.2.codebook.weight"])
  np.testing.assert_array_equal(model.decoder.model[2].block[2].linear.weight_v[...],
                                weights[f"decoder.model.2.block.2.linear.{convert.DIRECTION}"])
  assert model.config.attn_window_size is None and model.num_levels == 3


def test_config_json_of_another_model_is_an_error(tmp_path):
  repo = tmp_path / "snac"
  repo.mkdir()
  (repo / "config.json").write_text(json.dumps(OFFICIAL["snac_32khz"]["config"]))
  with pytest.raises(CheckpointMismatchError,
                     match=r"another SNAC than snac_24khz(.|\n)*sampling_rate: config.json 32000"):
    zoo.from_pretrained("snac_24khz", checkpoint=str(repo))
  (repo / "config.json").write_text(json.dumps({"sampling_rate": 24000, "n_mels": 80}))
  with pytest.raises(ValueError, match=r"unknown SNAC config.json keys \['n_mels'\]"):
    zoo.from_pretrained("snac_24khz", checkpoint=str(repo))
  with pytest.raises(FileNotFoundError, match="holds no pytorch_model.bin"):
    convert.read_checkpoint(str(repo), model_name="snac_24khz")
  with pytest.raises(ValueError, match="huggingface.co/hubertsiuzdak/snac_44khz"):
    convert.read_checkpoint(None, model_name="snac_44khz")


def test_offline_hub_download_says_what_to_fetch(tmp_path, monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
  with pytest.raises(FileNotFoundError, match="offline and not in the HF cache.*huggingface.co"):
    convert.read_checkpoint("hubertsiuzdak/snac_24khz", model_name="snac_24khz")


def test_checkpoint_errors(tmp_path):
  weights = golden_weights("full") | rotary("full")
  broken = dict(weights)
  del broken["quantizer.quantizers.1.codebook.weight"]
  broken["decoder.extra.weight"] = np.zeros(3, np.float32)
  with pytest.raises(CheckpointMismatchError,
                     match=r"missing .*quantizers\.1\.codebook(.|\n)*unexpected .*decoder\.extra"):
    load("full", broken)
  gain = next(k for k in weights if k.endswith(convert.GAIN))
  both = weights | {gain.replace(convert.GAIN, "weight_g"): weights[gain]}
  with pytest.raises(CheckpointMismatchError, match="appears twice"):
    load("full", both)
  name = next(iter(rotary("full")))
  with pytest.raises(CheckpointMismatchError, match="not the rotary inv_freq"):
    load("full", weights | {name: weights[name] * 2})
  with pytest.raises(CheckpointMismatchError, match="shape mismatch for encoder.block.0"):
    load("full", weights | {"encoder.block.0.bias": np.zeros(3, np.float32)})
  truncated = tmp_path / "pytorch_model.bin"
  write_repo(tmp_path, SPECS["full"]["kwargs"], weights)
  truncated.write_bytes(truncated.read_bytes()[:1000])
  with pytest.raises(ValueError):
    convert.read_checkpoint(str(tmp_path), model_name="x")


@pytest.fixture(scope="module")
def tiny():
  """snac_tiny with seeded weights: random init would compile one sampler per shape."""
  model = nnx.eval_shape(lambda: zoo.create("snac_tiny"))
  shapes = convert.expected_shapes(model)
  weights = codec_state_dict(shapes, seed=2) | convert.rotary_buffers(model.config)
  convert.load_state_dict(model, weights, model_name="snac_tiny")
  return model


def test_tiny_is_tiny_and_complete(tiny):
  num_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(tiny, nnx.Param)))
  assert num_params < 10_000
  layers = [type(m).__name__ for _, m in nnx.iter_graph(tiny)]
  assert layers.count("LocalMHA") == 2 and layers.count("NoiseBlock") == 2


@pytest.mark.parametrize("length", [1, 32, 33])
def test_lengths(tiny, length):
  """Input padded to whole multiples of hop * lcm(strides, window) = 32; output cropped."""
  audio = np.linspace(-0.5, 0.5, length, dtype=np.float32).reshape(1, length, 1)
  frames = -(-length // 32) * 32 // 8

  @nnx.jit
  def run(model, x):  # one compiled program instead of op-by-op dispatch
    ids = model.encode(x)
    return ids, model.encode(x, num_levels=2), model(x)["recon"], model.decode(ids)

  ids, ids2, recon, decoded = run(tiny, audio)
  assert [i.shape for i in ids] == [(1, frames // 4), (1, frames // 2), (1, frames)]
  assert [i.shape for i in ids2] == [(1, frames // 4), (1, frames // 2)]
  assert recon.shape == (1, length, 1) and decoded.shape == (1, frames * 8, 1)
  # Not bit-equal: the forward's straight-through z_e + (z_q - z_e) rounds unlike z_q.
  np.testing.assert_allclose(recon, decoded[:, :length], atol=1e-4)


def test_bad_inputs_get_clear_errors(tiny):
  ok = np.zeros((1, 64, 1), np.float32)
  with pytest.raises(ValueError, match="at 24000 Hz but the model expects 16000 Hz"):
    tiny.encode(ok, sample_rate=24000)
  with pytest.raises(ValueError, match=r"1 channel\(s\).*is it \[B, C, T\]"):
    tiny.encode(np.zeros((1, 1, 64), np.float32))
  with pytest.raises(ValueError, match=r"must be \[B, T, C\]"):
    tiny.encode(np.zeros((64,), np.float32))
  with pytest.raises(ValueError, match=r"\[-1, 1\]; got a peak of 2"):
    tiny(2 * np.ones((1, 64, 1), np.float32))
  with pytest.raises(TypeError, match="int16 PCM"):
    tiny.encode(np.zeros((1, 64, 1), np.int16))
  with pytest.raises(ValueError, match="NaN"):
    tiny.encode(np.full((1, 64, 1), np.nan, np.float32))
  with pytest.raises(ValueError, match="num_levels must be in 1..3"):
    tiny.encode(ok, num_levels=4)
  ids = tuple(np.zeros((1, n), np.int32) for n in (2, 4, 8))  # 64 samples: 8 frames
  with pytest.raises(ValueError, match="tuple of per-level arrays"):
    tiny.decode(np.zeros((1, 8, 3), np.int32))
  with pytest.raises(ValueError, match="disagree on batch or length"):
    tiny.decode((ids[0], ids[1][:, :2]))
  with pytest.raises(TypeError, match="must be integers"):
    tiny.decode((ids[0].astype(np.float32),))
  with pytest.raises(ValueError, match=r"must be in \[0, 32\)"):
    tiny.decode((ids[0] + 32,))
  with pytest.raises(ValueError, match="got 4 levels"):
    tiny.decode(ids + ids[:1])
  with pytest.raises(ValueError, match="mono codec"):
    zoo.create("snac_tiny", channels=2)
  with pytest.raises(ValueError, match="latent_dim 16 must equal"):
    zoo.create("snac_tiny", latent_dim=16)


def test_training_forward(tiny):
  audio = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 64, 1)).astype(np.float32)
  with pytest.raises(ValueError, match="needs rngs with a 'sample' stream"):
    tiny(audio, train=True)

  @nnx.jit
  def step(model, key):
    def loss(m):
      out = m(audio, train=True, rngs=nnx.Rngs(sample=key))
      return out["recon"].sum() + out["commitment_loss"], out
    return nnx.grad(loss, has_aux=True)(model)

  grads, out = step(tiny, jax.random.key(3))
  assert float(out["stats"]["levels_kept"]) < tiny.num_levels  # quantizer dropout 0.5
  assert float(out["commitment_loss"]) > 0 and float(out["codebook_loss"]) > 0
  noise_grad = grads.decoder.model[3].block[2].linear.weight_v[...]  # the noise drives it
  assert float(np.abs(noise_grad).max()) > 0
