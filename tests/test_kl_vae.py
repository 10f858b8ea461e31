"""The KL VAE FlexTok runs on: same outputs as FlexTok's wrapper over diffusers' AutoencoderKL.

Goldens come from tests/golden/make_kl_vae_golden.py (the official wrapper and diffusers on the
weights of zoo.convert.seeded); here the same weights are rebuilt from the saved key/shape
table and loaded through the converter, so a wrong name, layout, padding or scale changes the
outputs.
"""
import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.quantizers.gaussian import DiagonalGaussian
from zoo import registry
from zoo.convert import kl_vae as convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
GOLDEN_SHAPES = json.loads((GOLDEN / "kl_vae_golden_shapes.json").read_text())
OFFICIAL_SHAPES = json.loads((GOLDEN / "kl_vae_official_shapes.json").read_text())
G = np.load(GOLDEN / "kl_vae.npz")
# The golden model: FlexTok's VAE_BASE_CFG narrowed (make_kl_vae_golden.GOLDEN_CONFIG).
GOLDEN_OVERRIDES = dict(block_out_channels=(16, 32, 32, 32), layers_per_block=2,
                        norm_num_groups=8, latent_channels=4, image_size=32,
                        scaling_factor=float(G["scaling_factor"]))
FLEXTOK_PREFIX = "vae.vae."


def golden_state():
  return seeded_state_dict({k: tuple(v) for k, v in GOLDEN_SHAPES.items()}, seed=0)


def abstract_golden_model(**overrides):
  return nnx.eval_shape(
      lambda: registry.create("flextok_vae_c4", **{**GOLDEN_OVERRIDES, **overrides}))


@pytest.fixture(scope="module")
def model():
  m = abstract_golden_model()
  convert.load_state_dict(m, golden_state(), model_name="golden")
  return m


def seeded_tiny(seed=3, **overrides):
  """kl_vae_tiny with seeded weights through the converter (no eager random init: faster)."""
  model = nnx.eval_shape(lambda: registry.create("kl_vae_tiny", **overrides))
  shapes = expected_torch_shapes(model, convert.table(model.config))
  convert.load_state_dict(model, seeded_state_dict(shapes, seed=seed), model_name="kl_vae_tiny")
  return model


@pytest.fixture(scope="module")
def tiny():
  return seeded_tiny()


# -- parity with FlexTok's StableDiffusionVAE ------------------------------------------------
def test_encode_is_the_scaled_posterior_mode(model):
  latents = np.asarray(model.encode(jnp.asarray(G["images"])))
  assert latents.shape == (2, 4, 6, 4)
  np.testing.assert_allclose(latents, G["latents"], rtol=0, atol=1e-5)
  mean, logvar = model.encode_moments(jnp.asarray(G["images"]) * 2.0 - 1.0)
  np.testing.assert_allclose(np.asarray(mean), G["mean"], rtol=0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(logvar), G["logvar"], rtol=0, atol=1e-5)


def test_decode_matches_official(model):
  decoded = np.asarray(model.decode(jnp.asarray(G["latents"]), clip=False))
  np.testing.assert_allclose(decoded * 2.0 - 1.0, G["decoded_raw"], rtol=0, atol=2e-5)
  raw = model.decode_latents_raw(jnp.asarray(G["latents"]) / G["scaling_factor"])
  np.testing.assert_allclose(np.asarray(raw), G["decoded_raw"], rtol=0, atol=2e-5)
  clipped = np.asarray(model.decode(jnp.asarray(G["latents"])))
  np.testing.assert_allclose(clipped, np.clip((G["decoded_raw"] + 1) / 2, 0, 1), atol=2e-5)
  assert clipped.min() >= 0.0 and clipped.max() <= 1.0 and decoded.min() < 0.0  # clip matters


def test_kl_and_the_wrappers_in_place_scaling_quirk(model):
  out = model(jnp.asarray(G["images"]), train=False)
  np.testing.assert_allclose(np.asarray(out["kl"]), G["kl"], rtol=1e-5)
  # FlexTok's wrapper multiplies the mode tensor in place, so the KL it reports is the KL of
  # a posterior whose mean is already scaled; reproduce it to show what the golden holds.
  mean, logvar = model.encode_moments(jnp.asarray(G["images"]) * 2.0 - 1.0)
  quirk = DiagonalGaussian(jnp.concatenate([mean * G["scaling_factor"], logvar], -1)).kl()
  np.testing.assert_allclose(np.asarray(quirk), G["kl_wrapper"], rtol=1e-5)
  assert not np.allclose(G["kl"], G["kl_wrapper"])


def test_sample_draws_around_the_mode(model):
  images = jnp.asarray(G["images"])
  a = np.asarray(model.encode(images, sample=True, rngs=nnx.Rngs(sample=1)))
  b = np.asarray(model.encode(images, sample=True, rngs=nnx.Rngs(sample=2)))
  assert not np.allclose(a, b)
  std = np.exp(0.5 * G["logvar"]) * G["scaling_factor"]
  noise = np.concatenate([(a - G["latents"]) / std, (b - G["latents"]) / std])
  assert abs(noise.mean()) < 0.2 and abs(noise.std() - 1.0) < 0.15  # 384 standard normals
  with pytest.raises(ValueError, match="rngs"):
    model.encode(images, sample=True)


def test_nhwc_axes_are_not_swapped(model):
  """The golden images are 32x48: transposing H and W gives other latents."""
  swapped = np.asarray(model.encode(jnp.asarray(G["images"]).transpose(0, 2, 1, 3)))
  assert swapped.shape == (2, 6, 4, 4)
  assert np.abs(swapped.transpose(0, 2, 1, 3) - G["latents"]).max() > 1e-2


# -- converter --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OFFICIAL_SHAPES))
def test_converter_table_matches_flextok_vae_base_cfg(name):
  """FlexTok's VAE_BASE_CFG at c4/c8/c16, abstractly (no 84M-parameter init)."""
  model = nnx.eval_shape(lambda: registry.create(name))
  ours = expected_torch_shapes(model, convert.table(model.config))
  official = {k: tuple(v) for k, v in OFFICIAL_SHAPES[name].items()}
  assert sorted(set(official) ^ set(ours)) == []
  assert {k: ours[k] for k in official if ours[k] != official[k]} == {}
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert n_params == sum(int(np.prod(s)) for s in official.values())


def test_c16_parameter_count():
  model = nnx.eval_shape(lambda: registry.create("flextok_vae_c16"))
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert n_params == 83_821_011  # diffusers AutoencoderKL(VAE_BASE_CFG, latent_channels=16)


def test_every_released_name_has_an_official_table():
  repos = {n: registry.get(n).hf_repo or "" for n in registry.list_models()}
  released = [n for n, repo in repos.items() if repo.startswith("EPFL-VILAB/flextok_vae")]
  assert sorted(released) == sorted(OFFICIAL_SHAPES)


def test_converter_names_missing_extra_and_misshaped_tensors():
  state = golden_state()
  del state["decoder.up_blocks.1.upsamplers.0.conv.weight"]
  state["encoder.mid_block.attentions.0.to_q.weight"] = np.zeros((32, 16), np.float32)
  state["encoder.extra.weight"] = np.zeros((3,), np.float32)
  with pytest.raises(CheckpointMismatchError) as err:
    convert.load_state_dict(abstract_golden_model(), state, model_name="golden")
  msg = str(err.value)
  assert "missing from the checkpoint (1): decoder.up_blocks.1.upsamplers.0.conv.weight" in msg
  assert "unexpected in the checkpoint (1): encoder.extra.weight" in msg
  assert ("shape mismatch for encoder.mid_block.attentions.0.to_q.weight: checkpoint (32, 16), "
          "model expects (32, 32)") in msg


def test_converter_rejects_a_config_without_quant_conv():
  model = abstract_golden_model(use_quant_conv=False)
  with pytest.raises(CheckpointMismatchError, match="quant_conv.weight"):
    convert.load_state_dict(model, golden_state(), model_name="golden")


def test_flextok_prefix_loads_only_the_vae_part(model):
  state = {FLEXTOK_PREFIX + k: v for k, v in golden_state().items()}
  state["encoder.module_dict.enc_register_module.registers"] = np.zeros((4, 8), np.float32)
  state["decoder.module_dict.dec_nested_dropout.dropout_mask_token"] = np.zeros(8, np.float32)
  m = abstract_golden_model()
  convert.load_state_dict(m, state, model_name="flextok", prefix=FLEXTOK_PREFIX)
  latents = np.asarray(m.encode(jnp.asarray(G["images"])))
  np.testing.assert_allclose(latents, G["latents"], rtol=0, atol=1e-5)
  names = [r.torch_name for r in convert.table(m.config, FLEXTOK_PREFIX)]
  assert all(n.startswith(FLEXTOK_PREFIX) for n in names)
  with pytest.raises(CheckpointMismatchError, match="no tensor names start with 'vae.vae.'"):
    convert.load_state_dict(abstract_golden_model(), golden_state(), model_name="flextok",
                            prefix=FLEXTOK_PREFIX)
  del state[FLEXTOK_PREFIX + "quant_conv.bias"]
  with pytest.raises(CheckpointMismatchError, match=r"vae\.vae\.quant_conv\.bias"):
    convert.load_state_dict(abstract_golden_model(), state, model_name="flextok",
                            prefix=FLEXTOK_PREFIX)


def test_pre_0_14_attention_names_load_like_diffusers(model):
  renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
  state = {}
  for k, v in golden_state().items():
    for new, old in renames.items():
      k = k.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
    state[k] = v
  assert "decoder.mid_block.attentions.0.proj_attn.weight" in state
  m = abstract_golden_model()
  convert.load_state_dict(m, state, model_name="golden")
  np.testing.assert_allclose(np.asarray(m.encode(jnp.asarray(G["images"]))), G["latents"],
                             rtol=0, atol=1e-5)


# -- from_pretrained on a diffusers-layout directory -----------------------------------------
def _write_repo(path, config, **config_overrides):
  from safetensors.numpy import save_file
  model = nnx.eval_shape(lambda: registry.create("kl_vae_tiny"))
  shapes = expected_torch_shapes(model, convert.table(model.config))
  state = seeded_state_dict(shapes, seed=3)
  path.mkdir(parents=True, exist_ok=True)
  save_file(state, str(path / "diffusion_pytorch_model.safetensors"))
  hf = {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [16, 32],
        "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
        "norm_num_groups": 8, "sample_size": 32, "scaling_factor": config, **config_overrides}
  (path / "config.json").write_text(json.dumps(hf))
  return state


def test_from_pretrained_reads_weights_and_scaling_factor(tmp_path):
  state = _write_repo(tmp_path, 0.5)
  m = registry.from_pretrained("kl_vae_tiny", checkpoint=str(tmp_path), scaling_factor=None)
  assert m.scaling_factor == 0.5
  np.testing.assert_array_equal(np.asarray(m.decoder.conv_out.kernel[...]),
                                state["decoder.conv_out.weight"].transpose(2, 3, 1, 0))
  x = jnp.linspace(0, 1, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
  z = m.encode(x)
  assert z.shape == (2, 4, 4, 4)
  np.testing.assert_allclose(np.asarray(z), np.asarray(m.encode_moments(x * 2 - 1)[0]) * 0.5,
                             rtol=1e-6, atol=1e-6)
  assert m.decode(z).shape == (2, 8, 8, 3)
  # An explicit scaling_factor is checked against config.json.
  with pytest.raises(CheckpointMismatchError, match="scaling_factor: config.json 0.5"):
    registry.from_pretrained("kl_vae_tiny", checkpoint=str(tmp_path))


def test_from_pretrained_names_config_mismatches(tmp_path):
  _write_repo(tmp_path, 1.0, latent_channels=8, shift_factor=0.1)
  with pytest.raises(CheckpointMismatchError) as err:
    registry.from_pretrained("kl_vae_tiny", checkpoint=str(tmp_path))
  assert "latent_channels: config.json 8, kl_vae_tiny 4" in str(err.value)
  assert "shift_factor: config.json 0.1" in str(err.value)


def test_from_pretrained_without_weights_says_what_is_missing(tmp_path):
  with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors"):
    registry.from_pretrained("kl_vae_tiny", checkpoint=str(tmp_path))


# -- input validation -------------------------------------------------------------------------
@pytest.mark.parametrize("bad, err, match", [
    (np.full((1, 8, 8, 3), 1.5, np.float32), ValueError, r"\[0, 1\]"),
    (np.zeros((8, 8, 3), np.float32), ValueError, "NHWC"),
    (np.zeros((1, 3, 8, 8), np.float32), ValueError, "3 channels"),
    (np.zeros((1, 7, 8, 3), np.float32), ValueError, "multiples of 2"),
    (np.zeros((1, 8, 8, 3), np.uint8), TypeError, "uint8"),
    (np.full((1, 8, 8, 3), np.nan, np.float32), ValueError, "NaN"),
])
def test_encode_rejects_bad_images(tiny, bad, err, match):
  with pytest.raises(err, match=match):
    tiny.encode(bad)


@pytest.mark.parametrize("bad, err, match", [
    (np.zeros((1, 4, 4, 3), np.float32), ValueError, r"\[B, h, w, 4\]"),
    (np.zeros((4, 4, 4), np.float32), ValueError, "NHWC"),
    (np.zeros((1, 4, 4, 4), np.int32), TypeError, "float"),
    (np.full((1, 4, 4, 4), np.inf, np.float32), ValueError, "NaN or Inf"),
    ([[1.0]], TypeError, "array"),
])
def test_decode_rejects_bad_latents(tiny, bad, err, match):
  with pytest.raises(err, match=match):
    tiny.decode(bad)


def test_missing_scaling_factor_is_a_clear_error():
  m = seeded_tiny(scaling_factor=None)
  with pytest.raises(ValueError, match="no scaling_factor"):
    m.encode(np.zeros((1, 8, 8, 3), np.float32))
  with pytest.raises(ValueError, match="no scaling_factor"):
    m.decode(np.zeros((1, 4, 4, 4), np.float32))


def test_config_errors():
  cfg = registry.get("kl_vae_tiny").config
  with pytest.raises(ValueError, match="multiples of norm_num_groups"):
    dataclasses.replace(cfg, block_out_channels=(16, 20))
  with pytest.raises(ValueError, match="scaling_factor must be positive"):
    dataclasses.replace(cfg, scaling_factor=0.0)


def test_tiny_trains_forward_and_backward(tiny):
  x = jnp.linspace(0, 1, 2 * 16 * 16 * 3).reshape(2, 16, 16, 3)

  def loss(m):
    out = m(x, train=True, rngs=nnx.Rngs(sample=0))
    return jnp.mean((out["recon"] - x) ** 2) + 1e-6 * out["kl"].mean()

  grads = nnx.jit(nnx.grad(loss))(tiny)
  norms = [float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads)]
  assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) == len(norms)


def test_repo_id_offline_and_not_cached_says_what_to_download(monkeypatch, tmp_path):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setenv("HF_HOME", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="EPFL-VILAB/flextok_vae_c4.*offline"):
    convert.read_checkpoint("EPFL-VILAB/flextok_vae_c4", model_name="flextok_vae_c4")


def test_attached_config_json_is_checked_when_loading(tmp_path):
  """A repo id skips the registry's config.json check; the converter repeats it."""
  _write_repo(tmp_path, 0.5, norm_num_groups=4)
  state = convert.read_checkpoint(tmp_path, model_name="kl_vae_tiny")
  assert state.config["scaling_factor"] == 0.5
  model = nnx.eval_shape(lambda: registry.create("kl_vae_tiny", scaling_factor=None))
  with pytest.raises(CheckpointMismatchError, match="norm_num_groups: config.json 4"):
    convert.load_state_dict(model, state, model_name="kl_vae_tiny")
