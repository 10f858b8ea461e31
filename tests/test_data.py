"""zoo.data: the built-in photos, image folders, sharding, checkpointable iterators, errors."""
import numpy as np
import pytest
from PIL import Image

from zoo.data import make_eval_batches, make_image_dataset
from zoo.data import sample_photos, transforms
from zoo.data.image_folder import ImageFolder

PHOTOS = "builtin:photos"


def take(ds, n):
  it = iter(ds)
  return [next(it) for _ in range(n)]


def write_folder(root, n, *, sizes=((40, 56), (64, 48), (50, 50))):
  """n PNGs whose constant gray level 10 + 20 * i identifies image i after any crop/resize."""
  root.mkdir(parents=True, exist_ok=True)
  for i in range(n):
    h, w = sizes[i % len(sizes)]
    Image.fromarray(np.full((h, w, 3), 10 + 20 * i, np.uint8)).save(root / f"img{i:02d}.png")
  return root


def ids(images):
  """The identity of each constant image in a batch (see write_folder)."""
  levels = images.mean(axis=(1, 2, 3)) * 255
  return [int(round((v - 10) / 20)) for v in levels]


# builtin:photos

def test_photos_train_batch_shape_dtype_range():
  (batch,) = take(make_image_dataset(PHOTOS, image_size=32, batch_size=4, train=True), 1)
  assert set(batch) == {"image"}
  image = batch["image"]
  assert image.shape == (4, 32, 32, 3) and image.dtype == np.float32
  assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01


def test_photos_same_seed_same_batches_other_seed_differs():
  kw = dict(image_size=24, batch_size=3, train=True)
  a = take(make_image_dataset(PHOTOS, seed=7, **kw), 3)
  b = take(make_image_dataset(PHOTOS, seed=7, **kw), 3)
  c = take(make_image_dataset(PHOTOS, seed=8, **kw), 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not all(np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))


def test_photos_train_crops_differ_across_steps():
  n = len(sample_photos.TRAIN_PHOTOS)
  first, second = take(make_image_dataset(PHOTOS, image_size=24, batch_size=n, train=True), 2)
  # Each batch is one epoch over the photos: the same photos, other crops.
  for x in first["image"]:
    assert not any(np.array_equal(x, y) for y in second["image"])


def test_photos_train_and_eval_photos_are_disjoint():
  assert not set(sample_photos.TRAIN_PHOTOS) & set(sample_photos.EVAL_PHOTOS)
  train = [sample_photos.load_photo(name) for name in sample_photos.TRAIN_PHOTOS]
  for name in sample_photos.EVAL_PHOTOS:
    photo = sample_photos.load_photo(name)
    assert photo.dtype == np.uint8 and photo.shape[-1] == 3
    assert not any(p.shape == photo.shape and np.array_equal(p, photo) for p in train)


def test_photos_eval_set_is_fixed():
  a = make_eval_batches(PHOTOS, image_size=32, batch_size=8)
  b = make_eval_batches(PHOTOS, image_size=32, batch_size=8)
  expected = len(sample_photos.EVAL_PHOTOS) * sample_photos.EVAL_CROPS_PER_PHOTO
  assert sum(len(x) for x in a) == expected
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  images = np.concatenate(a)
  assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
  assert len({x.tobytes() for x in images}) == expected  # all crops differ
  # The first image of each eval photo is its central full-height square.
  coffee = sample_photos.load_photo("coffee")
  square = transforms.center_crop(coffee, min(coffee.shape[:2]))
  np.testing.assert_array_equal(images[0], transforms.eval_transform(square, 32))


def test_photos_eval_prefix():
  (batch,) = make_eval_batches(PHOTOS, image_size=16, batch_size=8, num_images=5)
  assert batch.shape == (5, 16, 16, 3)


# folder:/path, sharding, padding, resuming

def test_folder_recursive_with_extensions(tmp_path):
  write_folder(tmp_path / "a", 2)
  write_folder(tmp_path / "b" / "c", 1)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.JPG")
  Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "y.webp")
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "gray.jpeg")
  (tmp_path / "notes.txt").write_text("not an image")
  source = ImageFolder(str(tmp_path))
  assert len(source) == 6
  for i in range(len(source)):
    assert source[i].dtype == np.uint8 and source[i].shape[-1] == 3


def test_folder_eval_is_resize_and_center_crop(tmp_path):
  write_folder(tmp_path, 3)
  (batch,) = take(make_image_dataset(f"folder:{tmp_path}", image_size=16, batch_size=3,
                                     train=False), 1)
  assert batch["image"].shape == (3, 16, 16, 3) and batch["mask"].all()
  assert ids(batch["image"]) == [0, 1, 2]


@pytest.mark.parametrize("train", [True, False])
def test_folder_process_shards_are_disjoint_and_cover(tmp_path, train):
  write_folder(tmp_path, 8)
  seen = []
  for p in range(2):
    ds = make_image_dataset(f"folder:{tmp_path}", image_size=16, batch_size=2, train=train,
                            num_epochs=1, seed=3, process_index=p, process_count=2)
    shard = [i for batch in ds for i in ids(batch["image"])]
    assert len(shard) == 4
    seen.append(set(shard))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(8))


def test_local_batches_make_the_single_process_global_batch(tmp_path):
  write_folder(tmp_path, 5)
  kw = dict(image_size=16, train=True, seed=1)
  (whole,) = take(make_image_dataset(f"folder:{tmp_path}", batch_size=6, **kw), 1)
  for p in range(3):
    (local,) = take(make_image_dataset(f"folder:{tmp_path}", batch_size=2, process_index=p,
                                       process_count=3, **kw), 1)
    np.testing.assert_array_equal(local["image"], whole["image"][p::3])


def test_eval_pads_to_whole_batches_on_every_process(tmp_path):
  write_folder(tmp_path, 5)
  real = []
  for p in range(2):
    batches = list(make_image_dataset(f"folder:{tmp_path}", image_size=8, batch_size=2,
                                      train=False, process_index=p, process_count=2))
    assert len(batches) == 2 and all(b["image"].shape == (2, 8, 8, 3) for b in batches)
    for b in batches:
      assert not b["image"][~b["mask"]].any()  # padding is zeros
      real += ids(b["image"][b["mask"]])
  assert sorted(real) == list(range(5))


def test_finite_training_drops_the_incomplete_global_batch(tmp_path):
  write_folder(tmp_path, 5)
  ds = make_image_dataset(f"folder:{tmp_path}", image_size=8, batch_size=2, train=True,
                          num_epochs=3)
  assert len(list(ds)) == 7  # 15 examples -> 7 batches of 2


@pytest.mark.parametrize("spec", [PHOTOS, "folder"])
def test_iterator_state_resumes_at_the_same_batch(tmp_path, spec):
  if spec == "folder":
    spec = f"folder:{write_folder(tmp_path, 5)}"
  kw = dict(image_size=16, batch_size=3, train=True, seed=5)
  it = iter(make_image_dataset(spec, **kw))
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it)["image"] for _ in range(2)]
  resumed = iter(make_image_dataset(spec, **kw))
  resumed.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(resumed)["image"], want)


# transforms

def test_eval_transform_follows_torchvision_geometry():
  image = np.zeros((300, 451, 3), np.uint8)
  image[:, 225:] = 255  # right half white
  resized = transforms.resize_shorter_side(image, 100)
  assert resized.shape == (100, 150, 3)  # int(100 * 451 / 300)
  out = transforms.eval_transform(image, 100)
  assert out.shape == (100, 100, 3) and out.dtype == np.float32
  assert out[:, :40].max() == 0 and out[:, 60:].min() == 1


def test_to_rgb_uint8_converts_gray_rgba_bool_float():
  assert transforms.to_rgb_uint8(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
  assert transforms.to_rgb_uint8(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
  assert transforms.to_rgb_uint8(np.ones((4, 5), bool)).max() == 255
  assert transforms.to_rgb_uint8(np.full((4, 5, 1), 0.5)).max() == 128
  with pytest.raises(ValueError, match="shape"):
    transforms.to_rgb_uint8(np.zeros((4, 5, 2), np.uint8))


# errors

@pytest.mark.parametrize("spec, error, match", [
    ("photos", ValueError, "Unknown data spec"),
    ("builtin:faces", ValueError, "Unknown data spec"),
    ("s3:bucket", ValueError, "builtin:photos, folder:/path, tfds:NAME"),
    ("folder:/no/such/dir", FileNotFoundError, "does not exist"),
])
def test_bad_specs(spec, error, match):
  with pytest.raises(error, match=match):
    make_image_dataset(spec, image_size=8, batch_size=1, train=True)


def test_empty_folder(tmp_path):
  (tmp_path / "readme.txt").write_text("no images here")
  with pytest.raises(ValueError, match="holds no images"):
    make_image_dataset(f"folder:{tmp_path}", image_size=8, batch_size=1, train=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=0), "image_size must be a positive integer"),
    (dict(image_size=8.0), "image_size must be a positive integer"),
    (dict(batch_size=-2), "batch_size must be a positive integer"),
    (dict(process_index=2, process_count=2), "process_index=2"),
    (dict(num_examples=99), "num_examples=99, but builtin:photos has only 6"),
    (dict(split="test"), "builtin:photos has splits \\['eval', 'train'\\]"),
    (dict(num_epochs=1, batch_size=7), "make no global batch"),
])
def test_bad_arguments(kwargs, match):
  kw = dict(image_size=8, batch_size=2, train=True) | kwargs
  with pytest.raises(ValueError, match=match):
    make_image_dataset(PHOTOS, **kw)


def test_worker_processes_option_resumes(tmp_path):
  spec = f"folder:{write_folder(tmp_path, 5)}"
  kw = dict(image_size=8, batch_size=2, train=True, seed=2, num_workers=1)
  it = iter(make_image_dataset(spec, **kw))
  next(it)
  state = it.get_state()
  want = next(it)["image"]
  resumed = iter(make_image_dataset(spec, **kw))
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["image"], want)
  assert want.shape == (2, 8, 8, 3)
