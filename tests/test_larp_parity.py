"""LARP against the official code (tests/golden/make_larp_golden.py) on seeded weights.

The VQ model loads the way a released repo does: config.json (the hub mixin's constructor
arguments) beside model.safetensors, the architecture read from the config.
"""
import json
import pathlib
import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file

import zoo
from zoo.convert import common
from zoo.convert import larp as convert
from zoo.convert.seeded import seeded_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
BUFFERS = convert.BUFFERS


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(GOLDEN / "larp.npz"))


def _state_dict(kind: str, golden, *, with_buffers=True):
  shapes = json.loads((GOLDEN / "larp_golden_shapes.json").read_text())[kind]
  state = seeded_state_dict({k: s for k, s in shapes.items() if k not in BUFFERS}, seed=0)
  if with_buffers:
    state.update({k: golden[f"buffer_{k}"] for k in BUFFERS})
  return state


@pytest.fixture(scope="module")
def vq_repo(tmp_path_factory, golden):
  repo = tmp_path_factory.mktemp("larp_vq")
  shutil.copy(GOLDEN / "larp_vq_config.json", repo / "config.json")
  save_file(_state_dict("vq", golden), str(repo / "model.safetensors"))
  return repo


@pytest.fixture(scope="module")
def vq_model(vq_repo):
  return zoo.from_pretrained("larp_l_long", checkpoint=str(vq_repo))


def test_architecture_comes_from_config_json(vq_model):
  cfg = vq_model.config
  assert (cfg.input_size, cfg.frame_num, cfg.num_tokens, cfg.encoder_width, cfg.encoder_depth,
          cfg.codebook_size, cfg.bottleneck_dim, cfg.prior) == (32, 8, 32, 64, 2, 64, 8,
                                                                 "gptc-XXS")
  assert cfg.stochastic_temperature == 0.03 and cfg.prior_rounds == 2


def test_ids_identical_and_reconstruction(vq_model, golden):
  ids = np.asarray(vq_model.encode(golden["clips"]))
  np.testing.assert_array_equal(ids, golden["vq_ids"])
  recon = np.asarray(vq_model.decode(ids, clip=False))
  np.testing.assert_allclose(recon, golden["vq_recon"], atol=1e-4, rtol=0)


def test_prior_logits(vq_model, golden):
  logits = np.asarray(vq_model.prior_logits(golden["vq_ids"]))
  np.testing.assert_allclose(logits, golden["vq_prior_logits"], atol=1e-4, rtol=0)


def test_fewer_frames_as_encode_eval(vq_model, golden):
  short = golden["clips"][:, :4]
  ids = np.asarray(vq_model.encode(short))
  np.testing.assert_array_equal(ids, golden["vq_ids_4frames"])
  recon = np.asarray(vq_model.decode(ids, frames=4, clip=False))
  np.testing.assert_allclose(recon, golden["vq_recon_4frames"], atol=1e-4, rtol=0)


def test_kl_bottleneck(tmp_path, golden):
  path = tmp_path / "model.safetensors"
  save_file(_state_dict("kl", golden), str(path))
  model = zoo.from_pretrained("larp_tiny", checkpoint=str(path), input_size=32, frame_num=8,
                              regularizer="kl", prior=None)
  mean = np.asarray(model.encode(golden["clips"]))
  np.testing.assert_allclose(mean, golden["kl_mean"], atol=1e-5, rtol=0)
  recon = np.asarray(model.decode(mean, clip=False))
  np.testing.assert_allclose(recon, golden["kl_recon"], atol=1e-4, rtol=0)


def test_fixed_position_buffers_are_checked(tmp_path, golden):
  state = _state_dict("vq", golden)
  state["decoder_latent_pe"] = state["decoder_latent_pe"] + 0.01
  shutil.copy(GOLDEN / "larp_vq_config.json", tmp_path / "config.json")
  save_file(state, str(tmp_path / "model.safetensors"))
  with pytest.raises(common.CheckpointMismatchError, match="decoder_latent_pe"):
    zoo.from_pretrained("larp_l_long", checkpoint=str(tmp_path))


def test_checkpoint_of_another_architecture(tmp_path, golden):
  # The VQ weights under a config.json of twice the depth: the missing blocks are named.
  hub = json.loads((GOLDEN / "larp_vq_config.json").read_text())
  hub["encoder_depth"] = 4
  (tmp_path / "config.json").write_text(json.dumps(hub))
  save_file(_state_dict("vq", golden), str(tmp_path / "model.safetensors"))
  with pytest.raises(common.CheckpointMismatchError, match="encoder.blocks.3"):
    zoo.from_pretrained("larp_l_long", checkpoint=str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({"vit_enc_model_size": "large"}))
  with pytest.raises(common.CheckpointMismatchError, match="not a LARP tokenizer config"):
    zoo.from_pretrained("larp_l_long", checkpoint=str(tmp_path))


def test_unsupported_variant_named(tmp_path):
  hub = json.loads((GOLDEN / "larp_vq_config.json").read_text())
  hub["learned_decoder_patch_query_embed"] = True
  with pytest.raises(common.CheckpointMismatchError, match="learned_decoder_patch_query_embed"):
    convert.config_from_hub(hub)


def test_released_shapes_match_the_official_table():
  # The key/shape table the zoo expects for larp_l_long, from the released config's sizes.
  from flax import nnx
  model = nnx.eval_shape(lambda: zoo.create("larp_l_long"))
  shapes = common.expected_torch_shapes(model, convert.table(model.config))
  assert shapes["x_embedder.proj.weight"] == (768, 3, 4, 8, 8)
  assert shapes["bottleneck.regularizer.embedding.weight"] == (8192, 16)
  assert shapes["encoder_latent_query_embed"] == (1024, 768)
  assert shapes["prior_model.pos_emb"] == (1, 1024, 384)
  assert sum(1 for k in shapes if k.startswith("prior_model.blocks.")) == 12 * 16
  assert sum(1 for k in shapes if k.startswith("encoder.blocks.")) == 12 * 11
