"""From a data spec to per-process batches of images: the one entry point of zoo.data.

Specs: `builtin:photos` (scikit-image photos, no download), `folder:/path` (images under a
directory), `tfds:NAME` (a prepared TFDS dataset, e.g. `tfds:imagenet2012`).

Order of work: a global stream of example indices (shuffled per epoch, repeated), each index
turned into an image by a transform seeded by its global position, then process p keeps
positions p, p + P, p + 2P, ... So each process reads only its own examples, and the union
of the local batches of one step is the same global batch whatever the process count.
"""
import functools

from absl import flags
import grain
import numpy as np

from zoo.data.image_folder import ImageFolder
from zoo.data.sample_photos import SamplePhotos
from zoo.data.tfds_source import TfdsImages
from zoo.data.transforms import eval_transform, random_crop_flip, random_scale_crop_flip

SPECS = ("builtin:photos", "folder:/path", "tfds:NAME")


def open_source(spec: str, split: str | None, *, train: bool, data_dir: str | None = None):
  """(random-access source of uint8 images, training crop) for a spec.

  split=None picks the usual split: train -> 'train'; eval -> 'eval' (builtin:photos) or
  'validation' (tfds). A folder has no splits: give train and eval their own folders.
  """
  prefix, sep, rest = spec.partition(":")
  if sep and prefix == "builtin" and rest == "photos":
    return SamplePhotos(split or ("train" if train else "eval")), random_scale_crop_flip
  if sep and prefix == "folder" and rest:
    return ImageFolder(rest), random_crop_flip
  if sep and prefix == "tfds" and rest:
    split = split or ("train" if train else "validation")
    return TfdsImages(rest, split, data_dir=data_dir), random_crop_flip
  raise ValueError(f"Unknown data spec {spec!r}; expected one of {', '.join(SPECS)}.")


def _train_example(index, rng, *, source, crop, image_size):
  return {"image": crop(source[index], rng, image_size)}


def _eval_example(index, *, source, num_real, image_size):
  if index >= num_real:  # padding, so every process gets the same number of full batches
    return {"image": np.zeros((image_size, image_size, 3), np.float32), "mask": False}
  return {"image": eval_transform(source[index], image_size), "mask": True}


def _with_extra_inputs(example, *, extra_inputs):
  extra = extra_inputs(example["image"])
  clash = sorted(set(extra) & set(example))
  if clash:
    raise ValueError(f"extra_inputs returned {clash}, which the pipeline already sets")
  return {**example, **extra}


def host_inputs_batch(extra_inputs, images) -> dict:
  """`extra_inputs` (per image, as `make_image_dataset` takes it) over a host batch [B, ...]."""
  if extra_inputs is None:
    return {}
  rows = [extra_inputs(im) for im in np.asarray(images)]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]} if rows else {}


def _check_positive(**values):
  for name, value in values.items():
    if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
      raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def make_image_dataset(
    spec: str,
    *,
    image_size: int,
    batch_size: int,
    train: bool,
    split: str | None = None,
    seed: int = 0,
    num_epochs: int | None = None,
    num_examples: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
    data_dir: str | None = None,
    num_threads: int = 2,
    num_workers: int = 0,
    extra_inputs=None,
) -> grain.IterDataset:
  """A grain IterDataset of {"image": float32 [batch_size, image_size, image_size, 3] in [0, 1]}.

  batch_size is per process. `iter()` gives a grain DatasetIterator whose get_state() /
  set_state() resume at the same next batch.

  train=True: shuffled, random crops + flips (random scale crops for builtin:photos), repeated
    num_epochs times (None: forever); the last incomplete global batch is dropped.
  train=False: one pass in order (num_epochs is ignored), resize shorter side + center crop.
    The data is padded to whole global batches and each batch also carries "mask" (bool
    [batch_size]), False on padding, so every process runs the same number of steps.
  num_examples: use only the first num_examples examples of the split.
  data_dir: TFDS data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets).
  num_threads: reader threads per process; num_workers > 0 adds grain worker processes. Each
    worker makes whole batches from every num_workers-th example, so the batch order depends
    on num_workers: resume a checkpointed iterator with the same value.
  extra_inputs: a picklable image [H, W, 3] -> {name: array} a model needs besides the image
    (GPSToken's initial Gaussians), computed per example in the reader threads / workers.
  """
  _check_positive(
      image_size=image_size, batch_size=batch_size, process_count=process_count,
      num_epochs=num_epochs, num_examples=num_examples)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is not in [0, process_count={process_count}).")
  if num_threads < 0 or num_workers < 0:
    raise ValueError(f"num_threads and num_workers must be >= 0, got {num_threads}, {num_workers}.")
  source, crop = open_source(spec, split, train=train, data_dir=data_dir)
  n = len(source)
  where = spec + (f" split {split!r}" if split else "")
  if num_examples is not None:
    if num_examples > n:
      raise ValueError(f"num_examples={num_examples}, but {where} has only {n} examples.")
    n = num_examples
  if n == 0:
    raise ValueError(f"{where} has no examples.")
  global_batch = batch_size * process_count

  if train:
    ds = grain.MapDataset.range(n).seed(seed).shuffle().repeat(num_epochs)
    ds = ds.random_map(functools.partial(
        _train_example, source=source, crop=crop, image_size=image_size))
    if num_epochs is not None:
      if len(ds) < global_batch:
        raise ValueError(
            f"{len(ds)} examples make no global batch of {batch_size} x {process_count} processes.")
      ds = ds[:len(ds) // global_batch * global_batch]
  else:
    padded = -(-n // global_batch) * global_batch
    ds = grain.MapDataset.range(padded).map(functools.partial(
        _eval_example, source=source, num_real=n, image_size=image_size))

  if extra_inputs is not None:
    ds = ds.map(functools.partial(_with_extra_inputs, extra_inputs=extra_inputs))
  ds = ds[process_index::process_count]
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * batch_size)
  ds = ds.to_iter_dataset(read).batch(batch_size, drop_remainder=True)
  if num_workers:
    # Grain's worker processes read absl flags; outside absl.app.run nothing has parsed them.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return ds


def make_eval_batches(
    spec: str,
    *,
    image_size: int,
    batch_size: int,
    num_images: int | None = None,
    split: str | None = None,
    data_dir: str | None = None,
) -> list[np.ndarray]:
  """The first num_images eval images (all when None) as float32 [b, H, W, 3] batches.

  Deterministic and in memory, for a small fixed set evaluated again and again during
  training (e.g. PSNR every N steps). The last batch may be smaller.
  """
  ds = make_image_dataset(
      spec, image_size=image_size, batch_size=batch_size, train=False, split=split,
      num_examples=num_images, data_dir=data_dir)
  return [batch["image"][batch["mask"]] for batch in ds]
