"""from_pretrained on every checkpoint form (repo dir, .safetensors, torch .bin, repo id) and the
clear errors for checkpoints that do not fit. Weights are seeded in the official key layout."""
import collections
import json
import os
import pickle
import warnings
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

import zoo
from models.layers.maskgit_cnn import MaskGitCnnConfig
from zoo import registry
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict
from zoo.convert.torch_pickle import CheckpointFormatError, load_torch_checkpoint

# titok_s128's legacy layout (reshape quirk, ffn.2, pixel decoder) at a CPU-friendly size.
LEGACY = dict(image_size=64, encoder_size="tiny", decoder_size="tiny",
              pixel_cnn=MaskGitCnnConfig(hidden_channels=32, num_res_blocks=1, z_channels=32))
IMAGES = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)


def official_state(name, seed=0, **overrides):
  entry = registry.get(name)
  model = nnx.eval_shape(lambda: registry.create(name, **overrides))
  return seeded_state_dict(expected_torch_shapes(model, entry.table(model.config)), seed)


def load_direct(name, state, **overrides):
  model = nnx.eval_shape(lambda: registry.create(name, **overrides))
  registry.get(name).load_state_dict(model, state, model_name=name)
  return model


def outputs(model):
  tokens = model.encode(jnp.asarray(IMAGES))
  return np.asarray(tokens), np.asarray(model.decode(tokens, clip=False))


def assert_same_outputs(model, reference):
  for got, want in zip(outputs(model), reference):
    np.testing.assert_array_equal(got, want)


def hf_config(cfg, **vq):
  """config.json as the official `_save_pretrained` dumps it."""
  vq_model = dict(vit_enc_model_size=cfg.encoder_size, vit_dec_model_size=cfg.decoder_size,
                  vit_enc_patch_size=cfg.patch_size, vit_dec_patch_size=cfg.patch_size,
                  num_latent_tokens=cfg.num_latent_tokens, token_size=cfg.token_size,
                  codebook_size=cfg.codebook_size, finetune_decoder=cfg.finetune_decoder)
  if not cfg.is_legacy:  # the old (legacy) configs leave these out
    vq_model.update(is_legacy=False, quantize_mode=cfg.quantize_mode)
  vq_model.update(vq)
  return {"experiment": {"output_dir": "titok"}, "model": {"vq_model": vq_model},
          "dataset": {"preprocessing": {"crop_size": cfg.image_size}}}


def write_repo(path, state, config):
  path.mkdir()
  save_file(state, str(path / "model.safetensors"))
  (path / "config.json").write_text(json.dumps(config))
  return path


def torch_save(obj, path):
  torch = pytest.importorskip("torch")
  torch.save(obj, path)
  return path


def to_torch(state):
  torch = pytest.importorskip("torch")
  return {k: torch.from_numpy(v.copy()) for k, v in state.items()}


@pytest.fixture(scope="module")
def vq():
  state = official_state("titok_tiny_vq")
  return state, outputs(load_direct("titok_tiny_vq", state))


@pytest.fixture(scope="module")
def vae():
  state = official_state("titok_tiny_vae", seed=1)
  return state, outputs(load_direct("titok_tiny_vae", state))


# -- every checkpoint form gives the model loaded straight from the state dict ---------------

def test_hf_repo_directory(tmp_path, vq):
  state, reference = vq
  cfg = registry.get("titok_tiny_vq").config
  repo = write_repo(tmp_path / "repo", state, hf_config(cfg))
  assert_same_outputs(zoo.from_pretrained("titok_tiny_vq", checkpoint=str(repo)), reference)


def test_hf_repo_directory_legacy_with_overrides(tmp_path):
  state = official_state("titok_s128", **LEGACY)
  reference = outputs(load_direct("titok_s128", state, **LEGACY))
  cfg = nnx.eval_shape(lambda: registry.create("titok_s128", **LEGACY)).config
  repo = write_repo(tmp_path / "repo", state, hf_config(cfg))
  assert_same_outputs(zoo.from_pretrained("titok_s128", checkpoint=repo, **LEGACY), reference)


def test_single_safetensors_file(tmp_path, vae):
  state, reference = vae
  save_file(state, str(tmp_path / "w.safetensors"))
  model = zoo.from_pretrained("titok_tiny_vae", checkpoint=str(tmp_path / "w.safetensors"))
  assert_same_outputs(model, reference)


@pytest.mark.parametrize("wrap", ["flat", "state_dict", "model_and_step"])
def test_torch_bin_file(tmp_path, vq, wrap):
  state, reference = vq
  sd = to_torch(state)
  obj = {"flat": sd, "state_dict": {"state_dict": sd, "epoch": 3},
         "model_and_step": {"model": sd, "step": pytest.importorskip("torch").tensor(5)}}[wrap]
  path = torch_save(obj, tmp_path / "w.bin")
  assert_same_outputs(zoo.from_pretrained("titok_tiny_vq", checkpoint=path), reference)


def test_torch_bin_half_precision_views_and_parameters(tmp_path, vq):
  torch = pytest.importorskip("torch")
  state, _ = vq
  sd = to_torch(state)
  sd["decoder.ln_pre.weight"] = sd["decoder.ln_pre.weight"].to(torch.bfloat16)
  sd["encoder.ln_post.weight"] = sd["encoder.ln_post.weight"].half()
  w = state["encoder.transformer.0.mlp.c_fc.weight"]
  sd["encoder.transformer.0.mlp.c_fc.weight"] = torch.from_numpy(w.T.copy()).t()  # strides
  assert not sd["encoder.transformer.0.mlp.c_fc.weight"].is_contiguous()
  big = torch.zeros(w.size + 7)
  big[7:] = torch.from_numpy(w.reshape(-1))
  sd["encoder.transformer.1.mlp.c_fc.weight"] = big[7:].view(w.shape)  # storage offset
  sd["latent_tokens"] = torch.nn.Parameter(sd["latent_tokens"])
  path = torch_save(sd, tmp_path / "w.bin")

  raw = load_torch_checkpoint(path)
  assert str(raw["decoder.ln_pre.weight"].dtype) == "bfloat16"
  assert raw["encoder.ln_post.weight"].dtype == np.float16
  for k, v in sd.items():
    np.testing.assert_array_equal(np.asarray(raw[k], np.float32), v.detach().float().numpy())
  rounded = {k: np.asarray(raw[k], np.float32) for k in state}
  reference = outputs(load_direct("titok_tiny_vq", rounded))
  assert_same_outputs(zoo.from_pretrained("titok_tiny_vq", checkpoint=path), reference)


def test_torch_bin_legacy_raw_state_dict(tmp_path):
  """The fun-research/TiTok raw .bin form, for the legacy (stage-2) layout."""
  state = official_state("titok_s128", seed=2, **LEGACY)
  path = torch_save(to_torch(state), tmp_path / "tokenizer_titok_s128.bin")
  reference = outputs(load_direct("titok_s128", state, **LEGACY))
  assert_same_outputs(zoo.from_pretrained("titok_s128", checkpoint=str(path), **LEGACY), reference)


@pytest.mark.parametrize("name,filename,repo", [
    ("titok_s128", "model.safetensors", "yucornetto/tokenizer_titok_s128_imagenet"),
    ("maskgit_vqgan_f16", "maskgit-vqgan-imagenet-f16-256.bin", "fun-research/TiTok")])
def test_repo_id_offline_names_the_file_to_download(monkeypatch, tmp_path, name, filename, repo):
  pytest.importorskip("huggingface_hub")
  from huggingface_hub import constants
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError) as e:
    zoo.from_pretrained(name)
  assert filename in str(e.value) and repo in str(e.value) and "offline" in str(e.value)


def test_repo_id_offline_uses_the_hf_cache(monkeypatch, tmp_path, vq):
  """Offline is no reason to refuse a checkpoint that is already in the HF cache."""
  huggingface_hub = pytest.importorskip("huggingface_hub")
  state, reference = vq
  save_file(state, str(tmp_path / "model.safetensors"))
  calls = []

  def fake_download(repo_id, filename, **kw):
    calls.append((repo_id, filename, kw))
    return str(tmp_path / filename)

  monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  model = zoo.from_pretrained("titok_tiny_vq", checkpoint="someone/titok_tiny")
  assert calls == [("someone/titok_tiny", "model.safetensors", {"local_files_only": True})]
  assert_same_outputs(model, reference)
  monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # "0" is not offline
  zoo.from_pretrained("titok_tiny_vq", checkpoint="someone/titok_tiny")
  assert calls[-1][2] == {"local_files_only": False}


def test_model_without_release_needs_a_checkpoint():
  with pytest.raises(ValueError, match="titok_tiny_vq has no released checkpoint"):
    zoo.from_pretrained("titok_tiny_vq")


# -- checkpoints that do not fit: one clear error each ----------------------------------------

def test_checkpoint_of_another_model(tmp_path, vae):
  save_file(vae[0], str(tmp_path / "vae.safetensors"))
  with pytest.raises(CheckpointMismatchError) as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=tmp_path / "vae.safetensors")
  msg = str(e.value)
  assert "titok_tiny_vq" in msg and "missing" in msg and "quantize.embedding.weight" in msg
  assert "shape mismatch for decoder.decoder_embed.weight" in msg


@pytest.mark.parametrize("field,value", [("num_latent_tokens", 64), ("quantize_mode", "vae"),
                                          ("vit_dec_model_size", "large"),
                                          ("codebook_size", 8192)])
def test_repo_config_of_another_model(tmp_path, vq, field, value):
  state, _ = vq
  cfg = registry.get("titok_tiny_vq").config
  repo = write_repo(tmp_path / "repo", state, hf_config(cfg, **{field: value}))
  with pytest.raises(CheckpointMismatchError, match="config.json describes another model") as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=repo)
  assert f"{field}: config.json {value!r}" in str(e.value)


def test_repo_config_crop_size_and_legacy_default(tmp_path, vq):
  state, _ = vq
  cfg = registry.get("titok_tiny_vq").config
  config = hf_config(cfg)
  config["dataset"]["preprocessing"]["crop_size"] = 256
  del config["model"]["vq_model"]["is_legacy"]  # official default: legacy
  repo = write_repo(tmp_path / "repo", state, config)
  with pytest.raises(CheckpointMismatchError) as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=repo)
  assert "crop_size: config.json 256, titok_tiny_vq 64" in str(e.value)
  assert "is_legacy: config.json True" in str(e.value)


def test_repo_config_not_json(tmp_path, vq):
  repo = write_repo(tmp_path / "repo", vq[0], {})
  (repo / "config.json").write_text("{not json")
  with pytest.raises(CheckpointFormatError, match="config.json: not valid JSON"):
    zoo.from_pretrained("titok_tiny_vq", checkpoint=repo)


def _truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return path


def test_truncated_safetensors(tmp_path, vq):
  path = tmp_path / "w.safetensors"
  save_file(vq[0], str(path))
  with pytest.raises(CheckpointFormatError, match="truncated or corrupt") as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=_truncate(path))
  assert str(path) in str(e.value)


def test_truncated_bin(tmp_path, vq):
  path = _truncate(torch_save(to_torch(vq[0]), tmp_path / "w.bin"))
  with pytest.raises(CheckpointFormatError, match="truncated or corrupt") as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=path)
  assert str(path) in str(e.value)


def test_legacy_non_zip_torch_file(tmp_path, vq):
  torch = pytest.importorskip("torch")
  path = tmp_path / "old.pth"
  torch.save(to_torch(vq[0]), path, _use_new_zipfile_serialization=False)
  with pytest.raises(CheckpointFormatError, match="not a zip-format torch.save checkpoint"):
    zoo.from_pretrained("titok_tiny_vq", checkpoint=path)


def _load_edited(tmp_path, state, edit):
  state = dict(state)
  edit(state)
  save_file(state, str(tmp_path / "w.safetensors"))
  with pytest.raises(CheckpointMismatchError) as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=tmp_path / "w.safetensors")
  return str(e.value)


def test_missing_key(tmp_path, vq):
  msg = _load_edited(tmp_path, vq[0], lambda s: s.pop("decoder.ln_post.bias"))
  assert "missing from the checkpoint (1): decoder.ln_post.bias" in msg


def test_extra_key(tmp_path, vq):
  msg = _load_edited(tmp_path, vq[0], lambda s: s.update({"decoder.extra.weight": np.ones(3)}))
  assert "unexpected in the checkpoint (1): decoder.extra.weight" in msg


def test_missing_and_extra_in_one_error(tmp_path, vq):
  def edit(s):
    s["encoder.renamed.bias"] = s.pop("encoder.ln_pre.bias")
  msg = _load_edited(tmp_path, vq[0], edit)
  assert "encoder.ln_pre.bias" in msg and "encoder.renamed.bias" in msg


def test_wrong_shape(tmp_path, vq):
  msg = _load_edited(tmp_path, vq[0],
                     lambda s: s.update(latent_tokens=np.zeros((31, 128), np.float32)))
  assert "shape mismatch for latent_tokens: checkpoint (31, 128), model expects (32, 128)" in msg


def test_nan_tensor(tmp_path, vq):
  def edit(s):
    s["encoder.ln_pre.weight"] = s["encoder.ln_pre.weight"].copy()
    s["encoder.ln_pre.weight"][3] = np.nan
  assert "encoder.ln_pre.weight contains NaN" in _load_edited(tmp_path, vq[0], edit)


def test_not_a_checkpoint_extension(tmp_path, vq):
  path = tmp_path / "w.npz"
  np.savez(path, **vq[0])
  with pytest.raises(CheckpointFormatError, match=r"unknown checkpoint format '\.npz'"):
    zoo.from_pretrained("titok_tiny_vq", checkpoint=path)


@pytest.mark.parametrize("name", ["nope.safetensors", "nope.bin", "no_such_dir"])
def test_nonexistent_path(tmp_path, name):
  with pytest.raises(FileNotFoundError, match="not found") as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=tmp_path / name)
  assert str(tmp_path / name) in str(e.value)


def test_directory_without_weights(tmp_path):
  (tmp_path / "README.md").write_text("no weights here")
  with pytest.raises(FileNotFoundError, match="holds none of model.safetensors"):
    zoo.from_pretrained("titok_tiny_vq", checkpoint=tmp_path)


# -- the torch reader never runs code from a checkpoint ---------------------------------------

class _Shell:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


class _Eval:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return eval, (f"open({str(self.marker)!r}, 'w')",)


def test_torch_save_of_code_is_refused(tmp_path):
  marker = tmp_path / "pwned"
  path = torch_save({"w": _Shell(marker)}, tmp_path / "evil.bin")
  with pytest.raises(CheckpointFormatError, match=r"unsupported object (os|posix|nt)\.system"):
    zoo.from_pretrained("titok_tiny_vq", checkpoint=path)
  assert not marker.exists()


def test_torch_save_of_other_objects_is_refused(tmp_path, vq):
  import argparse
  path = torch_save({"model": to_torch(vq[0]), "args": argparse.Namespace(lr=1)},
                    tmp_path / "w.bin")
  with pytest.raises(CheckpointFormatError, match="unsupported object argparse.Namespace") as e:
    zoo.from_pretrained("titok_tiny_vq", checkpoint=path)
  assert str(path) in str(e.value)


@pytest.mark.parametrize("protocol", [2, 4])  # GLOBAL and STACK_GLOBAL opcodes
def test_handcrafted_zip_is_refused(tmp_path, protocol):
  marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("evil/data.pkl", pickle.dumps(collections.OrderedDict(w=_Eval(marker)), protocol))
  evil = r"unsupported object (__builtin__|builtins)\.eval"  # protocol 2 writes __builtin__
  with pytest.raises(CheckpointFormatError, match=evil):
    load_torch_checkpoint(path)
  assert not marker.exists()


def test_tensor_outside_its_storage_is_refused(tmp_path):
  """as_strided does not check bounds: a crafted stride must not read foreign memory."""
  torch = pytest.importorskip("torch")
  with warnings.catch_warnings():  # TypedStorage is what torch.save itself pickles
    warnings.simplefilter("ignore")
    storage = torch.arange(4.0).storage()

  class Strided:
    def __reduce__(self):
      return torch._utils._rebuild_tensor_v2, (storage, 0, (4,), (1000,), False,
                                               collections.OrderedDict())

  path = torch_save({"w": Strided()}, tmp_path / "w.bin")
  with pytest.raises(CheckpointFormatError, match="outside its storage"):
    load_torch_checkpoint(path)
