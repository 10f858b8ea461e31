"""The FVD I3D and FVD against the official code (tests/golden/make_i3d_golden.py)."""
import json
import pathlib

import numpy as np
import pytest
import torch

import zoo
from zoo.convert import common
from zoo.convert.seeded import batchnorm_state_dict
from zoo.evals import fvd as fvd_lib

GOLDEN = pathlib.Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(GOLDEN / "i3d.npz"))


def _weights():
  shapes = json.loads((GOLDEN / "i3d_golden_shapes.json").read_text())
  return batchnorm_state_dict(shapes, seed=0)


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
  # The released format: a torch.save'd state dict, read without running its pickle code.
  path = tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt"
  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in _weights().items()}, path)
  return zoo.from_pretrained("i3d_kinetics400", checkpoint=str(path.parent))


def test_features_match_the_official_i3d(i3d, golden):
  for side in ("real", "fake"):
    clips = golden[side].astype(np.float32) / 255.0
    feats = np.asarray(fvd_lib.i3d_features(i3d, clips, resize="videogpt"))
    np.testing.assert_allclose(feats, golden[f"{side}_features"], atol=1e-4, rtol=0)


def test_fvd_matches_the_torch_computation(i3d, golden):
  real = [golden["real"][:3] / 255.0, golden["real"][3:] / 255.0]  # two batches a side
  fake = [golden["fake"] / 255.0]
  value = fvd_lib.fvd(i3d, real, fake, resize="videogpt")
  np.testing.assert_allclose(value, float(golden["fvd_scipy"]), rtol=1e-3)
  # TF-GAN's SVD square root (OmniTokenizer's fvd.py) agrees as far as 6 clips allow.
  np.testing.assert_allclose(value, float(golden["fvd_tfgan"]), rtol=1e-2)
  assert fvd_lib.fvd_from_features(golden["real_features"], golden["real_features"]) < 1e-6


def test_preprocess_modes_agree_on_square_clips():
  clips = np.random.default_rng(0).random((1, 9, 32, 32, 3)).astype(np.float32)
  a = fvd_lib.preprocess(clips, "videogpt")
  b = fvd_lib.preprocess(clips, "styleganv")
  assert a.shape == (1, 9, 224, 224, 3) and float(a.min()) >= -1.0 and float(a.max()) <= 1.0
  np.testing.assert_allclose(a, b, atol=1e-6)
  wide = fvd_lib.preprocess(np.zeros((1, 9, 32, 48, 3), np.float32), "styleganv")
  assert wide.shape == (1, 9, 224, 224, 3)  # shorter side to 224, centre crop


def test_bad_clips_are_refused(i3d):
  with pytest.raises(ValueError, match="at least 9 frames"):
    fvd_lib.FVDFeatures(i3d).update(np.zeros((2, 8, 32, 32, 3), np.float32))
  with pytest.raises(ValueError, match="NTHWC"):
    fvd_lib.FVDFeatures(i3d).update(np.zeros((2, 3, 9, 32, 32), np.float32))
  with pytest.raises(ValueError, match="at least 9 frames"):
    i3d(np.zeros((1, 8, 224, 224, 3), np.float32))
  with pytest.raises(ValueError, match="two clips"):
    fvd_lib.fvd_from_features(np.zeros((1, 400)), np.zeros((3, 400)))


def test_checkpoint_problems_are_named(tmp_path):
  weights = _weights()
  weights["Mixed_4b.b1b.bn.running_var"] = -weights["Mixed_4b.b1b.bn.running_var"]
  del weights["logits.conv3d.bias"]
  from safetensors.numpy import save_file
  path = tmp_path / "i3d.safetensors"
  save_file(weights, str(path))
  with pytest.raises(common.CheckpointMismatchError, match="Mixed_4b.b1b.bn.running_var"):
    zoo.from_pretrained("i3d_kinetics400", checkpoint=str(path))


def test_protocols_are_pinned():
  larp = fvd_lib.PROTOCOLS["larp_ucf101"]
  assert (larp.data, larp.split, larp.num_frames, larp.size) == ("tfds:ucf101", "train", 16, 128)
  omni = fvd_lib.PROTOCOLS["omnitokenizer_ucf101"]
  assert (omni.num_frames, omni.size, omni.num_clips, omni.resize) == (17, 256, 2048, "videogpt")
