"""GPSToken against the official model on seeded weights (tests/golden/make_gpstoken_golden.py).

The goldens come from xtudbxk/GPSToken's own `GPSToken` module (with torch stand-ins for its
CUDA splatting extension and torchvision's RoIAlign) at 256 x 256 (a batch of two photos) and
512 x 512 (one image of four tiles, both decode paths); our model loads the same seeded
tensors through `zoo.from_pretrained` and the converter.
"""
import json
import pathlib

import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

import zoo
from zoo import registry
from zoo.convert import common
from zoo.convert import gpstoken as convert
from zoo.convert.seeded import gpstoken_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
# The golden model: make_gpstoken_golden.py's GOLDEN_GPS / GOLDEN_DECODER.
OVERRIDES = dict(num_gaussians=64, feature_dim=16, width=64, depth=2, decoder_channels=32,
                 decoder_res_blocks=1)
TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(GOLDEN / "gpstoken.npz"))


@pytest.fixture(scope="module")
def photos():
  init = np.load(GOLDEN / "gpstoken_init.npz")
  return {k.split("/")[0]: init[k] for k in init.files if k.endswith("/image")}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  shapes = json.loads((GOLDEN / "gpstoken_golden_shapes.json").read_text())
  path = tmp_path_factory.mktemp("gpstoken") / "gpstoken_golden.safetensors"
  save_file(gpstoken_state_dict({k: tuple(v) for k, v in shapes.items()}), str(path))
  return path


@pytest.fixture(scope="module")
def model(checkpoint):
  return zoo.from_pretrained("gpstoken_m128", checkpoint=str(checkpoint), **OVERRIDES)


def _strided(x, stride):
  return np.asarray(x)[:, ::int(stride), ::int(stride)]


def test_256_tokens_grid_and_reconstruction(model, golden, photos):
  images = np.stack([photos[str(n)] for n in golden["256/photos"]]).astype(np.float32) / 255.0
  tokens = model.encode(images, golden["256/gaussians"], golden["256/rois"])
  np.testing.assert_allclose(tokens, golden["256/tokens"], atol=TOL, rtol=0)
  np.testing.assert_allclose(_strided(model.render(tokens), golden["grid_stride"]),
                             golden["256/grid"], atol=TOL, rtol=0)
  recon = 2.0 * np.asarray(model.decode(tokens, clip=False)) - 1.0
  np.testing.assert_allclose(_strided(recon, golden["pixel_stride"]), golden["256/recon"],
                             atol=TOL, rtol=0)


@pytest.mark.parametrize("case", ["256", "512"])
def test_render_and_decode_of_the_official_tokens(model, golden, case):
  """Each stage on the golden's own inputs, so a mismatch names the stage."""
  tokens = golden[f"{case}/tokens"]
  np.testing.assert_allclose(_strided(model.render(tokens), golden["grid_stride"]),
                             golden[f"{case}/grid"], atol=TOL, rtol=0)
  paths = {"256": ((False, "256/recon"),),
           "512": ((False, "512/recon_tiled"), (True, "512/recon_separate"))}[case]
  for separately, key in paths:
    recon = 2.0 * np.asarray(model.decode(tokens, separately=separately, clip=False)) - 1.0
    np.testing.assert_allclose(_strided(recon, golden["pixel_stride"]), golden[key],
                               atol=TOL, rtol=0, err_msg=key)


def test_256_encode_runs_the_official_initialisation(model, golden, photos):
  images = np.stack([photos[str(n)] for n in golden["256/photos"]]).astype(np.float32) / 255.0
  gaussians, rois = model.initial_gaussians(images)
  np.testing.assert_array_equal(gaussians, golden["256/gaussians"])
  np.testing.assert_array_equal(rois, golden["256/rois"])
  np.testing.assert_allclose(model.encode(images), golden["256/tokens"], atol=TOL, rtol=0)


def _image_512(golden, photos):
  tiles = np.stack([photos[str(n)] for n in golden["512/tiles"]])
  return (tiles.reshape(2, 2, 256, 256, 3).transpose(0, 2, 1, 3, 4).reshape(1, 512, 512, 3)
          .astype(np.float32) / 255.0)


def test_512_canvas_tokens_and_both_decode_paths(model, golden, photos):
  image = _image_512(golden, photos)
  gaussians, rois = model.initial_gaussians(image)  # per 256 tile, as the official loader
  np.testing.assert_array_equal(gaussians, golden["512/gaussians"])
  np.testing.assert_array_equal(rois, golden["512/rois"])
  tokens = model.encode(image, gaussians, rois)
  np.testing.assert_allclose(tokens, golden["512/tokens"], atol=TOL, rtol=0)
  from models.image.gpstoken import split_tiles
  np.testing.assert_allclose(split_tiles(tokens, 2), golden["512/tile_tokens"], atol=TOL,
                             rtol=0)
  np.testing.assert_allclose(_strided(model.render(tokens), golden["grid_stride"]),
                             golden["512/grid"], atol=TOL, rtol=0)
  for separately, key in ((False, "512/recon_tiled"), (True, "512/recon_separate")):
    recon = 2.0 * np.asarray(model.decode(tokens, separately=separately, clip=False)) - 1.0
    np.testing.assert_allclose(_strided(recon, golden["pixel_stride"]), golden[key],
                               atol=TOL, rtol=0, err_msg=key)


def test_released_layouts_match_the_converter():
  official = json.loads((GOLDEN / "gpstoken_official_shapes.json").read_text())
  assert sorted(official) == ["gpstoken_l256", "gpstoken_m128", "gpstoken_s64"]
  for name, table in official.items():
    cfg = registry.get(name).config
    model = nnx.eval_shape(lambda: zoo.create(name))
    want = common.expected_torch_shapes(model, convert.table(cfg))
    want |= convert.unused_official_shapes(cfg)
    assert want == {k: tuple(v) for k, v in table.items()}, name


def test_checkpoint_of_another_size_is_rejected(checkpoint):
  with pytest.raises(common.CheckpointMismatchError, match="shape mismatch"):
    zoo.from_pretrained("gpstoken_l256", checkpoint=str(checkpoint))


def test_extra_keys_are_ignored_and_bad_unused_tensors_reported(checkpoint, tmp_path, caplog):
  from safetensors.numpy import load_file
  state = load_file(str(checkpoint))
  state["loss.discriminator.main.0.weight"] = np.zeros((4, 3, 4, 4), np.float32)
  path = tmp_path / "with_training_state.safetensors"
  save_file(state, str(path))
  with caplog.at_level("WARNING"):
    zoo.from_pretrained("gpstoken_m128", checkpoint=str(path), **OVERRIDES)
  assert "loss.discriminator.main.0.weight" in caplog.text
  state["preprocess_img.1.temb_proj.weight"] = np.zeros((128, 256), np.float32)
  save_file(state, str(path))
  with pytest.raises(common.CheckpointMismatchError, match="temb_proj"):
    zoo.from_pretrained("gpstoken_m128", checkpoint=str(path), **OVERRIDES)
  del state["decoder.conv_out.bias"]
  state["preprocess_img.1.temb_proj.weight"] = np.zeros((128, 512), np.float32)
  save_file(state, str(path))
  with pytest.raises(common.CheckpointMismatchError, match="decoder.conv_out.bias"):
    zoo.from_pretrained("gpstoken_m128", checkpoint=str(path), **OVERRIDES)
