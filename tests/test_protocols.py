"""The pinned evaluation protocols against torchvision and guided-diffusion
(goldens: tests/golden/make_protocol_golden.py), and the uint8 casts before Inception."""
import hashlib
import pathlib

import numpy as np
import pytest
import torch

from zoo.evals import protocols

GOLDEN = np.load(pathlib.Path(__file__).parent / "golden" / "protocols.npz")


def photos():
  from skimage import data
  return {"astronaut": data.astronaut(), "coffee": data.coffee(),
          "coffee_tall": np.ascontiguousarray(data.coffee().transpose(1, 0, 2)),
          "chelsea": data.chelsea()}


PHOTOS = photos()


@pytest.mark.parametrize("protocol", ["titok", "titok_wds", "adm"])
@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_protocol_equals_reference_exactly(protocol, name):
  small = protocols.preprocess(PHOTOS[name], protocol, image_size=64)
  np.testing.assert_array_equal(small, GOLDEN[f"{protocol}_{name}_64"])
  full = protocols.preprocess(PHOTOS[name], protocol)
  assert full.shape == (256, 256, 3) and full.dtype == np.uint8
  assert hashlib.sha256(full.tobytes()).hexdigest() == str(GOLDEN[f"sha256_{protocol}_{name}_256"])


def test_tensor_resize_is_not_the_titok_protocol():
  # torchvision's bicubic antialias on tensors differs from PIL's; TiTok resizes PIL images.
  diffs = [int(GOLDEN[k]) for k in GOLDEN.files if k.startswith("maxdiff_titok_tensor_")]
  assert max(diffs) == 8
  crop = protocols.preprocess(PHOTOS["coffee"], "titok", image_size=64)
  assert np.abs(crop.astype(int) - GOLDEN["titok_tensor_coffee_64"]).max() == 8


def test_webdataset_jpeg_round_trip_matters():
  # TiTok's shards hold JPEG q100 re-encodes: its real images are not the plain crops.
  plain = protocols.preprocess(PHOTOS["coffee"], "titok")
  shard = protocols.preprocess(PHOTOS["coffee"], "titok_wds")
  assert np.abs(plain.astype(int) - shard).max() == 40


def test_protocol_bad_inputs():
  image = PHOTOS["chelsea"]
  with pytest.raises(ValueError, match="unknown evaluation protocol 'clean'"):
    protocols.preprocess(image, "clean")
  with pytest.raises(TypeError, match="uint8"):
    protocols.preprocess(image.astype(np.float32) / 255, "titok")
  with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
    protocols.preprocess(image[..., 0], "adm")
  with pytest.raises(ValueError, match="positive integer"):
    protocols.preprocess(image, "adm", image_size=0)


def test_to_inception_uint8_truncates_like_torch():
  x = np.linspace(-0.1, 1.1, 10007, dtype=np.float32)
  want = (torch.from_numpy(x).clamp(0, 1) * 255).to(torch.uint8).numpy()
  np.testing.assert_array_equal(protocols.to_inception_uint8(x), want)
  assert protocols.to_inception_uint8(np.float32([0.999])) == 254  # truncation, not rounding
  k = np.arange(256, dtype=np.float32)  # real images (ToTensor: k / 255) come back unchanged
  np.testing.assert_array_equal(protocols.to_inception_uint8(k / np.float32(255)), k)


def test_titok_quantize_then_cast_rounds():
  x = np.linspace(-0.1, 1.1, 10007, dtype=np.float32)
  t = torch.from_numpy(x).clamp(0, 1)
  want = (torch.round(t * 255) / 255 * 255).to(torch.uint8).numpy()  # eval_reconstruction
  got = protocols.to_inception_uint8(protocols.titok_quantize(x))
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(got, np.round(np.clip(x, 0, 1) * np.float32(255)))


@pytest.mark.parametrize("fn", [protocols.to_inception_uint8, protocols.titok_quantize])
def test_casts_bad_inputs(fn):
  with pytest.raises(TypeError, match="float"):
    fn(np.zeros((2, 4, 4, 3), np.uint8))
  with pytest.raises(ValueError, match="NaN"):
    fn(np.full((1, 2), np.nan, np.float32))
  with pytest.raises(ValueError, match=r"\[0, 255\] or \[-1, 1\]"):
    fn(np.full((1, 2), 200.0, np.float32))
  with pytest.raises(ValueError, match=r"\[0, 255\] or \[-1, 1\]"):
    fn(np.full((1, 2), -1.0, np.float32))
