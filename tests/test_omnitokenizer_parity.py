"""OmniTokenizer against the official code (tests/golden/make_omnitokenizer_golden.py) on
seeded weights.

Each model loads the way a release does: a Lightning .ckpt (torch.save of state_dict +
hyper_parameters {"args": argparse.Namespace} + training state) through
zoo.from_pretrained, the architecture read from the pickled Namespace without running it.
"""
import argparse
import json
import pathlib

import numpy as np
import pytest

import zoo
from zoo.convert import common
from zoo.convert import omnitokenizer as convert
from zoo.convert.seeded import omnitokenizer_state_dict
from zoo.convert.torch_pickle import CheckpointFormatError

torch = pytest.importorskip("torch")
GOLDEN = pathlib.Path(__file__).parent / "golden"
META = json.loads((GOLDEN / "omnitokenizer_golden.json").read_text())


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(GOLDEN / "omnitokenizer.npz"))


def official_state_dict(name: str, golden) -> dict:
  shapes = META[name]["shapes"]
  index = {k for k in shapes if k.endswith("relative_position_index")}
  state = omnitokenizer_state_dict({k: s for k, s in shapes.items() if k not in index}, seed=0)
  state.update({k: golden[f"{name}_relative_position_index"] for k in index})
  return state


def save_lightning_ckpt(path, state: dict, hparams: dict, **extra):
  """A checkpoint shaped as Lightning 1.5 saves the VQGAN (save_hyperparameters on args)."""
  torch.save({"epoch": 3, "global_step": 1200, "pytorch-lightning_version": "1.5.4",
              "state_dict": {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
              "hparams_name": "args", "hyper_parameters": {"args": argparse.Namespace(**hparams)},
              "optimizer_states": [{"state": {0: {"step": torch.tensor(1200.0)}},
                                    "param_groups": [{"lr": 1e-3, "betas": (0.5, 0.9)}]}],
              "lr_schedulers": [{"t_initial": 500000, "lr_min": 5e-5}],
              "callbacks": {"ModelCheckpoint{'monitor': 'val/recon_loss'}": {
                  "best_model_score": torch.tensor(0.12), "best_model_path": "/x.ckpt"}},
              **extra}, str(path))
  return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, golden):
  out = {}
  for name in META:
    path = save_lightning_ckpt(tmp_path_factory.mktemp(name) / f"{name}.ckpt",
                               official_state_dict(name, golden), META[name]["hparams"])
    registered = "omnitokenizer_imagenet_ucf_vae" if "vae" in name else "omnitokenizer_imagenet_ucf"
    out[name] = zoo.from_pretrained(registered, checkpoint=str(path))
  return out


def test_architecture_comes_from_the_hyperparameters(models):
  cfg = models["vq_rel"].config
  assert (cfg.width, cfg.heads, cfg.dim_head, cfg.patch_size, cfg.temporal_patch_size,
          cfg.window_size, cfg.codebook_size, cfg.codebook_dim) == (64, 2, 32, 4, 4, 4, 64, 8)
  assert cfg.spatial_pos == "rel" and models["vq_rope"].config.spatial_pos == "rope"
  assert cfg.causal_temporal and cfg.causal_peg and not cfg.restarts
  assert models["vae_rope"].config.use_vae


@pytest.mark.parametrize("name", ["vq_rope", "vq_rel"])
def test_vq_ids_identical_and_reconstructions(models, golden, name):
  model = models[name]
  for kind, x in (("image", golden["images"]), ("video", golden["clips"])):
    ids = np.asarray(model.encode(x))
    want = golden[f"{name}_{kind}_ids"]
    np.testing.assert_array_equal(ids, want[:, 0] if kind == "image" else want)
    recon = np.asarray(model.decode(ids, clip=False))
    np.testing.assert_allclose(recon, golden[f"{name}_{kind}_recon"], atol=1e-4, rtol=0)


def test_vae_posterior_means_and_reconstructions(models, golden):
  model = models["vae_rope"]
  for kind, x in (("image", golden["images"]), ("video", golden["clips"])):
    mean = np.asarray(model.encode(x))
    want = golden[f"vae_rope_{kind}_mean"]
    np.testing.assert_allclose(mean, want[:, 0] if kind == "image" else want, atol=1e-5,
                               rtol=0)
    recon = np.asarray(model.decode(mean, clip=False))
    np.testing.assert_allclose(recon, golden[f"vae_rope_{kind}_recon"], atol=1e-4, rtol=0)


def test_misspelled_causal_flags_load(tmp_path, golden):
  # The launch scripts' spelling (issues #13, #20) gives the same model.
  hparams = dict(META["vq_rope"]["hparams"])
  hparams["casual_in_temporal_transformer"] = hparams.pop("causal_in_temporal_transformer")
  hparams["casual_in_peg"] = hparams.pop("causal_in_peg")
  path = save_lightning_ckpt(tmp_path / "casual.ckpt", official_state_dict("vq_rope", golden),
                             hparams)
  model = zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))
  assert model.config.causal_temporal and model.config.causal_peg
  ids = np.asarray(model.encode(golden["clips"]))
  np.testing.assert_array_equal(ids, golden["vq_rope_video_ids"])
  hparams["causal_in_peg"] = False  # both spellings, disagreeing: an error naming them
  with pytest.raises(common.CheckpointMismatchError, match="casual_in_peg"):
    convert.config_from_hparams({"args": hparams})


def test_training_networks_are_kept_for_fine_tuning(tmp_path, golden):
  state = official_state_dict("vq_rope", golden)
  state["image_discriminator.model0.0.weight"] = np.ones((64, 3, 4, 4), np.float32)
  state["perceptual_model.net.slice1.0.weight"] = np.ones((64, 3, 3, 3), np.float32)
  path = save_lightning_ckpt(tmp_path / "with_disc.ckpt", state, META["vq_rope"]["hparams"])
  zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))  # inference: ignored
  extra = convert.training_tensors(convert.read_ckpt(path)[0])
  assert sorted(extra) == ["image_discriminator.model0.0.weight",
                           "perceptual_model.net.slice1.0.weight"]


def test_pickle_that_would_run_code_is_refused(tmp_path, golden):
  class RunsCode:
    def __reduce__(self):
      return (print, ("this ran",))
  path = save_lightning_ckpt(tmp_path / "evil.ckpt", official_state_dict("vq_rope", golden),
                             META["vq_rope"]["hparams"], callbacks={"x": RunsCode()})
  with pytest.raises(CheckpointFormatError, match=r"unsupported object .*print in the checkpoint"):
    zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))


def test_buffers_and_missing_tensors_are_checked(tmp_path, golden):
  hparams = META["vq_rope"]["hparams"]
  state = official_state_dict("vq_rope", golden)
  key = "encoder.enc_spatial_transformer.layers.0.1.norm.beta"
  state[key] = state[key] + 0.1
  path = save_lightning_ckpt(tmp_path / "beta.ckpt", state, hparams)
  with pytest.raises(common.CheckpointMismatchError, match="norm.beta is not zero"):
    zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))
  state = official_state_dict("vq_rope", golden)
  del state["decoder.to_pixels.0.weight"]
  path = save_lightning_ckpt(tmp_path / "missing.ckpt", state, hparams)
  with pytest.raises(common.CheckpointMismatchError, match="decoder.to_pixels.0.weight"):
    zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))


def test_not_a_lightning_checkpoint(tmp_path):
  path = tmp_path / "plain.ckpt"
  torch.save({"model": {"w": torch.zeros(2)}}, str(path))
  with pytest.raises(CheckpointFormatError, match="not a Lightning checkpoint"):
    zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))
  path.write_bytes(path.read_bytes()[:200])
  with pytest.raises(CheckpointFormatError, match="truncated or corrupt"):
    zoo.from_pretrained("omnitokenizer_imagenet_ucf", checkpoint=str(path))


def test_released_shapes_match_the_official_table(golden):
  # The zoo's expected key/shape table at the golden size equals the official state dict's
  # (less the tensors the official inference path never reads, and the checked buffers).
  from flax import nnx
  cfg = convert.config_from_hparams({"args": META["vq_rel"]["hparams"]})
  model = nnx.eval_shape(lambda: zoo.registry.get("omnitokenizer_tiny").build(cfg, nnx.Rngs(0)))
  shapes = common.expected_torch_shapes(model, convert.table(cfg))
  official = {k: tuple(v) for k, v in META["vq_rel"]["shapes"].items()
              if not convert._unused_by_inference(k) and not k.endswith(
                  (".beta", "relative_position_index"))}
  assert {k: v for k, v in shapes.items() if k not in convert.DERIVED} == official
