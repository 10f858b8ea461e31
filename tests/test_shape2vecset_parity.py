"""3DShape2VecSet against the official models_ae.py (tests/golden/make_shape2vecset_golden.py)
on seeded weights, loaded from `checkpoint-N.pth` files written the way main_ae.py writes them.
"""
import argparse
import json
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

import zoo
from models.threed.farthest_point_sampling import farthest_point_sample
from zoo.convert import common
from zoo.convert import shape2vecset as convert
from zoo.convert.seeded import seeded_state_dict
from zoo.convert.torch_pickle import CheckpointFormatError

torch = pytest.importorskip("torch")
GOLDEN = pathlib.Path(__file__).parent / "golden"
SMALL = dict(dim=64, num_latents=32, depth=2, heads=4, dim_head=16)
SHAPES = json.loads((GOLDEN / "shape2vecset_shapes.json").read_text())


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(GOLDEN / "shape2vecset.npz"))


def _state_dict(kind, golden):
  state = seeded_state_dict({k: s for k, s in SHAPES[kind].items() if k != convert.BASIS}, 0)
  return state | {convert.BASIS: golden["basis"]}


def _save_checkpoint(path, state, *, model="kl_d512_m512_l8", point_cloud_size=256):
  """As util/misc.py's save_model: weights, optimizer and scaler state, epoch, the args."""
  weights = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
  optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}},
               "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.95), "params": [0]}]}
  args = argparse.Namespace(model=model, point_cloud_size=point_cloud_size, batch_size=64,
                            output_dir="output/ae/" + model, device="cuda")
  torch.save({"model": weights, "optimizer": optimizer, "epoch": 3,
              "scaler": {"scale": 65536.0, "_growth_tracker": 0}, "args": args}, path)
  return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, golden):
  root = tmp_path_factory.mktemp("s2v")
  kl_file = _save_checkpoint(root / "checkpoint-3.pth", _state_dict("kl", golden))
  (root / "ae").mkdir()
  _save_checkpoint(root / "ae" / "checkpoint-7.pth", _state_dict("ae", golden),
                   model="ae_d512_m256")
  kl = zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(kl_file),
                           latent_dim=8, **SMALL)
  ae = zoo.from_pretrained("shape2vecset_ae_d512_m256", checkpoint=str(root / "ae"),
                           decoder_ff=True, **SMALL)
  return kl, ae


def test_farthest_point_sampling_picks_the_official_points(golden):
  idx = farthest_point_sample(golden["surface"], 32)
  np.testing.assert_array_equal(np.asarray(idx), golden["fps_indices"])


def test_farthest_point_sampling_against_brute_force():
  rng = np.random.default_rng(3)
  points = rng.uniform(-1, 1, (2, 50, 3)).astype(np.float32)
  for b in range(2):
    picked = [0]
    for _ in range(9):
      d = ((points[b][:, None] - points[b][picked][None]) ** 2).sum(-1).min(1)
      picked.append(int(np.argmax(d)))
    np.testing.assert_array_equal(np.asarray(farthest_point_sample(points, 10))[b], picked)
  drawn = np.asarray(farthest_point_sample(points, 10, key=jax.random.key(1)))
  assert len(set(drawn[0])) == 10 and drawn.shape == (2, 10)


def test_kl_posterior_and_logits(models, golden):
  kl, _ = models
  assert kl.config.num_inputs == 256  # from the file's args.point_cloud_size
  posterior = kl.posterior(golden["surface"])
  np.testing.assert_allclose(posterior.mean, golden["kl_mean"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(posterior.logvar, golden["kl_logvar"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(kl.kl(posterior), golden["kl_kl"], rtol=1e-4)
  latents = kl.encode(golden["surface"])
  np.testing.assert_allclose(latents, golden["kl_mean"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(kl.decode(latents, golden["queries"]), golden["kl_logits"],
                             atol=1e-4, rtol=0)


def test_ae_latents_and_logits_with_decoder_ff(models, golden):
  _, ae = models
  latents = ae.encode(golden["surface"])
  np.testing.assert_allclose(latents, golden["ae_latents"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(ae(golden["surface"], golden["queries"]), golden["ae_logits"],
                             atol=1e-4, rtol=0)


def test_sampled_latents_follow_the_posterior(models, golden):
  kl, _ = models
  draws = np.stack([kl.encode(golden["surface"], sample=True, key=jax.random.key(i))
                    for i in range(2)])
  assert not np.allclose(draws[0], draws[1])
  posterior = kl.posterior(golden["surface"])
  z = (draws - np.asarray(posterior.mean)) / np.asarray(posterior.std)
  assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1
  with pytest.raises(ValueError, match="key="):
    kl.encode(golden["surface"], sample=True)


@pytest.mark.parametrize("name", ["kl_d512_m512_l8", "ae_d512_m256"])
def test_released_architectures_match_the_official_key_table(name):
  built = nnx.eval_shape(lambda: zoo.create("shape2vecset_" + name))
  want = {k: tuple(v) for k, v in SHAPES[name].items() if k != convert.BASIS}
  assert common.expected_torch_shapes(built, convert.table(built.config)) == want


def test_a_checkpoint_of_another_architecture_is_named(tmp_path, golden):
  path = _save_checkpoint(tmp_path / "checkpoint-1.pth", _state_dict("kl", golden),
                          model="kl_d512_m512_l16")
  with pytest.raises(common.CheckpointMismatchError, match="shape2vecset_kl_d512_m512_l16"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(path))


def test_mismatched_keys_and_basis_are_errors(tmp_path, golden):
  state = _state_dict("kl", golden)
  del state["to_outputs.bias"]
  path = _save_checkpoint(tmp_path / "checkpoint-1.pth", state)
  with pytest.raises(common.CheckpointMismatchError, match="to_outputs.bias"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(path), latent_dim=8,
                        **SMALL)
  state = _state_dict("kl", golden) | {convert.BASIS: 2 * golden["basis"]}
  path = _save_checkpoint(tmp_path / "checkpoint-2.pth", state)
  with pytest.raises(common.CheckpointMismatchError, match="Fourier basis"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(path), latent_dim=8,
                        **SMALL)


class _RunsCode:
  def __reduce__(self):
    import os
    return (os.system, ("echo pwned",))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path, golden):
  path = tmp_path / "checkpoint-1.pth"
  torch.save({"model": {}, "args": _RunsCode()}, path)
  with pytest.raises(CheckpointFormatError, match="unsupported object"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(path))


def test_missing_and_truncated_files(tmp_path, golden):
  with pytest.raises(FileNotFoundError, match="Google Drive"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(tmp_path))
  path = _save_checkpoint(tmp_path / "checkpoint-1.pth", _state_dict("kl", golden))
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  with pytest.raises(CheckpointFormatError, match="truncated or corrupt"):
    zoo.from_pretrained("shape2vecset_kl_d512_m512_l8", checkpoint=str(path))
