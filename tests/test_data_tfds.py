"""zoo.data with `tfds:NAME`: a tiny real TFDS dataset (ArrayRecord) built in a temp dir.

Images go in as PNG bytes, so preparing needs no TensorFlow.
"""
import io
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from zoo.data import make_eval_batches, make_image_dataset

NAME = "zoo_tiny_images"
SPLIT_SIZES = {"train": 6, "validation": 3}


def png(image):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="png")
  return buffer.getvalue()


class ZooTinyImages(tfds.core.GeneratorBasedBuilder):
  """Constant-color images of varied sizes; the gray level 10 + 20 * i identifies image i."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)), "id": np.int32}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split) for split in SPLIT_SIZES}

  def _generate_examples(self, split):
    offset = 0 if split == "train" else SPLIT_SIZES["train"]
    for i in range(offset, offset + SPLIT_SIZES[split]):
      shape = (30 + 4 * (i % 3), 40 - 3 * (i % 2), 3)
      yield i, {"image": png(np.full(shape, 10 + 20 * i, np.uint8)), "id": i}


def ids(images):
  return [int(round((v * 255 - 10) / 20)) for v in images.mean(axis=(1, 2, 3))]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("tfds")
  ZooTinyImages(data_dir=str(root), file_format="array_record").download_and_prepare()
  return str(root)


def test_train_batches(data_dir):
  ds = make_image_dataset(f"tfds:{NAME}", image_size=16, batch_size=3, train=True, seed=0,
                          num_epochs=1, data_dir=data_dir)
  batches = list(ds)
  assert len(batches) == 2
  images = np.concatenate([b["image"] for b in batches])
  assert images.shape == (6, 16, 16, 3) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0
  assert sorted(ids(images)) == list(range(6))


def test_eval_uses_the_validation_split(data_dir):
  batches = make_eval_batches(f"tfds:{NAME}", image_size=8, batch_size=2, data_dir=data_dir)
  assert [len(b) for b in batches] == [2, 1]
  assert sorted(ids(np.concatenate(batches))) == [6, 7, 8]


def test_iterator_state_round_trip(data_dir):
  kw = dict(image_size=8, batch_size=2, train=True, seed=4, data_dir=data_dir)
  it = iter(make_image_dataset(f"tfds:{NAME}", **kw))
  next(it)
  state = it.get_state()
  want = next(it)["image"]
  resumed = iter(make_image_dataset(f"tfds:{NAME}", **kw))
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)["image"], want)


def test_not_prepared_says_where_tfds_looked(tmp_path):
  with pytest.raises(FileNotFoundError, match="not prepared") as info:
    make_image_dataset("tfds:mnist", image_size=8, batch_size=1, train=True,
                       data_dir=str(tmp_path))
  assert str(tmp_path) in str(info.value) and "tfds build mnist" in str(info.value)


def test_unknown_dataset(tmp_path):
  with pytest.raises(FileNotFoundError, match="neither a known TFDS name"):
    make_image_dataset("tfds:no_such_dataset_zz", image_size=8, batch_size=1, train=True,
                       data_dir=str(tmp_path))


def test_unknown_split(data_dir):
  with pytest.raises(ValueError, match="Unknown split"):
    make_image_dataset(f"tfds:{NAME}", split="test", image_size=8, batch_size=1, train=False,
                       data_dir=data_dir)


def test_tfrecord_only_is_refused(data_dir, tmp_path):
  # Same dataset, but its info claims TFRecord files (preparing real ones needs TensorFlow).
  src = f"{data_dir}/{NAME}/1.0.0"
  dst = tmp_path / NAME / "1.0.0"
  dst.mkdir(parents=True)
  info = json.loads(open(f"{src}/dataset_info.json").read())
  info["fileFormat"] = "tfrecord"
  (dst / "dataset_info.json").write_text(json.dumps(info))
  (dst / "features.json").write_text(open(f"{src}/features.json").read())
  with pytest.raises(ValueError, match="random access"):
    make_image_dataset(f"tfds:{NAME}", image_size=8, batch_size=1, train=True,
                       data_dir=str(tmp_path))
