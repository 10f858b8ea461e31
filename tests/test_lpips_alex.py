"""LPIPS-Alex against the `lpips` package on seeded weights
(goldens: tests/golden/make_lpips_alex_golden.py).

The golden file records the released files' names and shapes; the same seeded weights are
rebuilt from them here and loaded through zoo/convert/lpips_alex.py.
"""
import pathlib

import numpy as np
import pytest
from flax import nnx

from models.perception.alex_lpips import AlexLPIPS
from models.perception.lpips_head import LPIPSConfig
from tests.golden.perception_seeding import tweak
from zoo.convert import lpips_alex
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict

GOLDEN = np.load(pathlib.Path(__file__).parent / "golden" / "lpips_alex.npz")
SHAPES = {str(GOLDEN[f"key_{i}"]): tuple(int(d) for d in GOLDEN[f"shape_{i}"])
          for i in range(sum(k.startswith("key_") for k in GOLDEN.files))}


def trunk_weights():
  trunk = {k: s for k, s in SHAPES.items() if k.startswith("features.")}
  return tweak("alexnet", seeded_state_dict(trunk))


def lin_weights():
  return tweak("lpips_lin", seeded_state_dict({k: s for k, s in SHAPES.items()
                                               if k.startswith("lin")}))


def abstract_model():
  return nnx.eval_shape(lambda: AlexLPIPS(rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def lpips_net():
  model = abstract_model()
  lpips_alex.load_state_dict(model, {**trunk_weights(), **lin_weights()})
  return model


def test_converter_table_matches_released_layout():
  ours = expected_torch_shapes(abstract_model(), lpips_alex.table())
  assert {k: SHAPES[k] for k in lpips_alex.DROPPED} == lpips_alex.DROPPED
  assert ours == {k: s for k, s in SHAPES.items() if k not in lpips_alex.DROPPED}


@pytest.mark.parametrize("size", ["64", "48x72"])
def test_lpips_alex_matches_lpips_package(lpips_net, size):
  x0, x1 = GOLDEN[f"x0_{size}"], GOLDEN[f"x1_{size}"]
  layers = np.asarray(lpips_net.layers(x0, x1))
  np.testing.assert_allclose(layers, GOLDEN[f"layers_{size}"], rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(np.asarray(lpips_net(x0, x1)), GOLDEN[f"lpips_{size}"], rtol=0,
                             atol=1e-5)
  assert np.all(np.asarray(lpips_net(x0, x0)) == 0)


def test_lpips_alex_errors(lpips_net):
  with pytest.raises(ValueError, match="at least 31x31"):
    lpips_net(np.zeros((1, 30, 64, 3)), np.zeros((1, 30, 64, 3)))
  with pytest.raises(ValueError, match="one shape"):
    lpips_net(np.zeros((1, 32, 32, 3)), np.zeros((1, 32, 33, 3)))
  with pytest.raises(ValueError, match="AlexNet trunk"):
    AlexLPIPS(LPIPSConfig(trunk="vgg16"), rngs=nnx.Rngs(0))


def test_lpips_alex_drops_only_the_alexnet_classifier():
  model = abstract_model()
  state = {**trunk_weights(), **lin_weights()}
  head = {k: np.broadcast_to(np.float32(0), s) for k, s in lpips_alex.DROPPED.items()}
  lpips_alex.load_state_dict(model, {**state, **head})
  head["classifier.1.weight"] = np.broadcast_to(np.float32(0), (4096, 4096))
  with pytest.raises(CheckpointMismatchError, match="classifier.1.weight"):
    lpips_alex.load_state_dict(model, {**state, **head})
  with pytest.raises(CheckpointMismatchError, match="missing from the checkpoint.*lin4"):
    lpips_alex.load_state_dict(model, trunk_weights())


def test_lpips_alex_reads_a_checkpoint_directory(tmp_path, monkeypatch):
  import torch
  from safetensors.numpy import save_file
  # The trunk as safetensors; the lin file in the released (legacy torch.save) format.
  monkeypatch.setattr(lpips_alex, "TRUNK_FILE", "alexnet.safetensors")
  torch.save({k: torch.from_numpy(v) for k, v in lin_weights().items()},
             str(tmp_path / "alex.pth"), _use_new_zipfile_serialization=False)
  with pytest.raises(FileNotFoundError, match="lacks alexnet.safetensors"):
    lpips_alex.read_checkpoint(str(tmp_path))
  save_file(trunk_weights(), str(tmp_path / "alexnet.safetensors"))
  model = abstract_model()
  lpips_alex.load_state_dict(model, lpips_alex.read_checkpoint(str(tmp_path)))
  np.testing.assert_allclose(np.asarray(model(GOLDEN["x0_64"], GOLDEN["x1_64"])),
                             GOLDEN["lpips_64"], rtol=0, atol=1e-5)
  with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
    lpips_alex.read_checkpoint(None)
