"""The FID InceptionV3 against pytorch-fid and torch-fidelity, on seeded weights.

Goldens come from tests/golden/make_inception_golden.py: pytorch-fid's InceptionV3 (+ the fc of
fid_inception_v3) and torch-fidelity's FeatureExtractorInceptionV3 in float32 and float64, run on
uint8 photos (inception_common.photo_cases) with the seeded weights of zoo.convert.seeded in the
released file's layout, tweaked by inception_common.tweak. Here the same weights are rebuilt from
the saved key/shape table and loaded through the converter.

"Relative" below is max |ours - theirs| / max |theirs| over a case's features (per-element
ratios mean nothing for features near 0). Measured on 2 CPU cores, over pool and logits of all
photo cases: 1.1e-6 against pytorch-fid, 1.6e-6 against torch-fidelity in float32, 1.4e-6 against
it in float64 (TiTok's evaluator). That is float32 rounding through ~50 layers: torch's own
float32 and float64 runs differ by 2e-7 (make_inception_golden.py prints it), so one bound of
1e-4 serves both references with room for other CPUs' summation orders.
"""
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.perception import inception
from tests.golden.inception_common import FEATURE_STRIDE, photo_cases, tweak
from zoo.convert import inception as inception_convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict
from zoo.convert.torch_pickle import CheckpointFormatError

GOLDEN = pathlib.Path(__file__).parent / "golden"
SHAPES = {k: tuple(v) for k, v in
          json.loads((GOLDEN / "inception_shapes.json").read_text()).items()}
RELATIVE_TOLERANCE = 1e-4  # the bar, for float32 and float64 references alike
REFERENCES = {"pytorch_fid": "pytorch_fid", "fidelity_f32": "tf1", "fidelity_f64": "tf1"}


def seeded_weights(with_counters=True):
  state = tweak(seeded_state_dict(SHAPES))  # the golden's weights, num_batches_tracked included
  return state if with_counters else {k: v for k, v in state.items()
                                      if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def model():
  net = nnx.eval_shape(lambda: zoo.create("inception_fid"))
  inception_convert.load_state_dict(net, seeded_weights())
  return net


@pytest.fixture(scope="module")
def ours(model):
  """{resize mode: {case: features}}, every case once per mode (2 compiles: batches 1 and 2)."""
  return {mode: {case: {k: np.asarray(v) for k, v in model.features(x, resize=mode).items()}
                 for case, x in photo_cases().items()}
          for mode in inception.RESIZE_MODES}


def relative_errors(ours_by_case, reference):
  golden, errors = np.load(GOLDEN / "inception_fid.npz"), {}
  for case, feats in ours_by_case.items():
    for key in ("pool", "logits"):
      want = golden[f"{reference}__{case}__{key}"]
      got = feats[key][:, ::FEATURE_STRIDE]
      errors[f"{case}/{key}"] = np.abs(got - want).max() / np.abs(want).max()
      norm = golden[f"{reference}__{case}__{key}_norm"]
      errors[f"{case}/{key}_norm"] = np.abs(np.linalg.norm(feats[key], axis=1) - norm).max() / (
          norm.max())
  return errors


def test_converter_table_matches_released_layout():
  net = nnx.eval_shape(lambda: zoo.create("inception_fid"))
  released = {k: s for k, s in SHAPES.items() if not k.endswith("num_batches_tracked")}
  assert expected_torch_shapes(net, inception_convert.table(net.config)) == released
  assert len(inception_convert.conv_names()) == 94 and len(released) == 94 * 5 + 2


@pytest.mark.parametrize("reference", sorted(REFERENCES))
def test_features_match_official(ours, reference):
  # Measured: pytorch_fid 1.1e-6, fidelity_f32 1.6e-6, fidelity_f64 1.4e-6 at most (pool, logits).
  errors = relative_errors(ours[REFERENCES[reference]], reference)
  worst = max(errors, key=errors.get)
  assert errors[worst] < RELATIVE_TOLERANCE, f"{reference} {worst}: {errors[worst]:.2e}"


def test_features_are_image_dependent_and_resizes_differ(ours):
  # Guards the parity tests against degenerate seeded weights: two photos differ by ~10% of the
  # largest feature, and the two resize conventions by 0.6% (64 -> 299) to 0.06% (299, where
  # only (x - 128) / 128 against 2 x / 255 - 1 differs), well above the tolerance.
  pool = ours["tf1"]["small_64"]["pool"]
  assert np.abs(pool[0] - pool[1]).max() > 0.05 * np.abs(pool).max()
  for case in ("small_64", "exact_299"):
    a, b = ours["tf1"][case]["pool"], ours["pytorch_fid"][case]["pool"]
    assert np.abs(a - b).max() > 4 * RELATIVE_TOLERANCE * np.abs(b).max()


def test_logits_unbiased_and_float_input(model, ours):
  feats = ours["tf1"]["medium_256"]
  bias = np.asarray(model.fc.bias[...])
  np.testing.assert_allclose(feats["logits_unbiased"] + bias, feats["logits"], rtol=0, atol=1e-5)
  # Float [0, 1] input is the uint8 input / 255, in both conventions.
  x = photo_cases()["medium_256"]
  for mode in inception.RESIZE_MODES:
    got = np.asarray(model.features(x.astype(np.float32) / 255.0, resize=mode)["pool"])
    want = ours[mode]["medium_256"]["pool"]
    assert np.abs(got - want).max() < 1e-5 * np.abs(want).max()


def test_resize_matches_its_reference_formula():
  # At 299x299 both resizes are the identity: only the normalisation is left.
  x = np.random.default_rng(0).integers(0, 256, (1, 299, 299, 3), dtype=np.uint8)
  np.testing.assert_array_equal(inception.preprocess(x, "tf1"),
                                (x.astype(np.float32) - 128) / 128)
  np.testing.assert_allclose(inception.preprocess(x, "pytorch_fid"),
                             2 * (x.astype(np.float32) / 255) - 1, rtol=0, atol=2.5e-7)
  small = jnp.arange(12.0).reshape(1, 2, 2, 3)
  tf1, pt = inception.resize_tf1(small, 4), inception.resize_pytorch(small, 4)
  # TF1: source = dst * in / out = 0, 0.5, 1, 1.5 -> rows 0, halfway, 1, 1 (clamped).
  np.testing.assert_allclose(tf1[0, :, 0, 0], [0, 3, 6, 6])
  # torch: source = (dst + 0.5) * in / out - 0.5 = -0.25 (-> 0), 0.25, 0.75, 1.25 -> 0, 1.5, 4.5, 6.
  np.testing.assert_allclose(pt[0, :, 0, 0], [0, 1.5, 4.5, 6])


def test_from_pretrained_reads_the_released_file_formats(tmp_path, ours):
  torch = pytest.importorskip("torch")
  state = {k: torch.from_numpy(np.asarray(v)) for k, v in seeded_weights(False).items()}
  # The release predates torch's zip format; torch.save writes zip today: read both.
  path = tmp_path / inception_convert.WEIGHT_FILE
  torch.save(state, path, _use_new_zipfile_serialization=False)
  legacy = zoo.from_pretrained("inception_fid", checkpoint=str(tmp_path))
  x = photo_cases()["exact_299"]
  want = ours["tf1"]["exact_299"]["pool"]
  np.testing.assert_array_equal(np.asarray(legacy.features(x)["pool"]), want)
  torch.save(state, path)
  assert inception_convert.read_checkpoint(path).keys() == state.keys()
  with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
    zoo.from_pretrained("inception_fid")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="does not hold pt_inception"):
    zoo.from_pretrained("inception_fid", checkpoint=str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*nothing.pth"):
    zoo.from_pretrained("inception_fid", checkpoint=str(tmp_path / "nothing.pth"))


def test_truncated_file(tmp_path):
  torch = pytest.importorskip("torch")
  state = {k: torch.from_numpy(np.asarray(v)) for k, v in seeded_weights(False).items()
           if k.startswith("Conv2d_1a")}
  for zip_format in (True, False):
    path = tmp_path / f"w{zip_format}.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(CheckpointFormatError, match="truncated") as e:
      inception_convert.read_checkpoint(path)
    assert str(path) in str(e.value)


def _load_error(edit) -> str:
  state = seeded_weights()
  edit(state)
  net = nnx.eval_shape(lambda: zoo.create("inception_fid"))
  with pytest.raises(CheckpointMismatchError) as e:
    inception_convert.load_state_dict(net, state)
  return str(e.value)


def test_converter_errors_name_the_problem():
  msg = _load_error(lambda s: s.pop("Mixed_6c.branch7x7dbl_3.bn.running_var"))
  assert "missing from the checkpoint (1): Mixed_6c.branch7x7dbl_3.bn.running_var" in msg
  msg = _load_error(lambda s: s.update({"AuxLogits.fc.weight": np.zeros((1000, 768), "f4")}))
  assert "unexpected in the checkpoint (1): AuxLogits.fc.weight" in msg
  msg = _load_error(lambda s: s.update({"fc.weight": np.zeros((1000, 2048), "f4")}))
  assert "shape mismatch for fc.weight: checkpoint (1000, 2048), model expects (1008, 2048)" in msg
  msg = _load_error(lambda s: s.update({"Conv2d_2a_3x3.conv.weight": np.full((32, 32, 3, 3),
                                                                             np.nan, "f4")}))
  assert "Conv2d_2a_3x3.conv.weight contains NaN or Inf" in msg
  msg = _load_error(lambda s: s.update({"Mixed_7c.branch_pool.bn.running_var":
                                        np.zeros((192,), "f4")}))
  assert "running_var not positive in Mixed_7c.branch_pool.bn.running_var" in msg
  msg = _load_error(lambda s: s.update({"fc.num_batches_tracked": np.zeros((2,), "i8")}))
  assert "num_batches_tracked is not a scalar" in msg


@pytest.mark.parametrize("images, error, match", [
    (np.zeros((64, 64, 3), np.uint8), ValueError, r"NHWC RGB images \[B, H, W, 3\]; got shape"),
    (np.zeros((1, 3, 64, 64), np.uint8), ValueError, "NHWC RGB"),
    (np.zeros((1, 64, 64, 4), np.uint8), ValueError, "NHWC RGB"),
    (np.zeros((1, 0, 64, 3), np.uint8), ValueError, "at least 1x1"),
    (np.zeros((1, 64, 64, 3), np.int32), TypeError, "uint8 images in \\[0, 255\\] or float"),
    (np.full((1, 64, 64, 3), 2.0, np.float32), ValueError, r"must be in \[0, 1\]; got values"),
    (np.full((1, 64, 64, 3), -0.5, np.float32), ValueError, r"pass uint8 for \[0, 255\]"),
    (np.full((1, 64, 64, 3), np.nan, np.float32), ValueError, "contain NaN or Inf"),
])
def test_bad_inputs(model, images, error, match):
  with pytest.raises(error, match=match):
    model.features(images)


def test_bad_resize_mode(model):
  with pytest.raises(ValueError, match=r"resize must be one of \('tf1', 'pytorch_fid'\)"):
    model.features(np.zeros((1, 8, 8, 3), np.uint8), resize="bicubic")
  with pytest.raises(ValueError, match="resize must be one of"):
    inception.InceptionConfig(resize="antialias")


def test_create_gives_random_weights():
  net = zoo.create("inception_fid")
  assert (net.config.num_classes, net.config.resize, net.config.precision) == (
      1008, "tf1", "highest")
  kernel = np.asarray(net.mixed_7c.branch_pool.conv.kernel[...])
  assert kernel.shape == (1, 1, 2048, 192) and np.all(np.isfinite(kernel)) and kernel.std() > 0
  assert net.fc.kernel.shape == (2048, 1008) and net.mixed_7c.pool == "max"
