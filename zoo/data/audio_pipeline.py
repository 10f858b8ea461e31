"""From a data spec to per-process batches of audio crops, as zoo/data/pipeline.py does for
images: a global stream of example indices, each turned into a crop by a transform seeded by
its global position, then process p keeps positions p, p + P, ...

Specs: `builtin:audio` (zoo/data/audio_samples.py), `folder:/path` (WAV files), `tfds:NAME`
(a prepared TFDS dataset with an Audio feature, e.g. `tfds:librispeech`). Clips are resampled
to the model's rate and converted to its channel count.
"""
import functools

import grain
import numpy as np

from zoo.data import audio_transforms
from zoo.data.audio_folder import AudioFolder
from zoo.data.audio_samples import SampleAudio
from zoo.data.tfds_source import TfdsAudio

SPECS = ("builtin:audio", "folder:/path", "tfds:NAME")


def open_audio_source(spec: str, split: str | None, *, train: bool, sample_rate: int,
                      data_dir: str | None = None):
  prefix, sep, rest = spec.partition(":")
  if sep and prefix == "builtin" and rest == "audio":
    return SampleAudio(split or ("train" if train else "eval"), sample_rate)
  if sep and prefix == "folder" and rest:
    return AudioFolder(rest)
  if sep and prefix == "tfds" and rest:
    return TfdsAudio(rest, split or ("train" if train else "validation"), data_dir=data_dir)
  raise ValueError(f"Unknown audio data spec {spec!r}; expected one of {', '.join(SPECS)}.")


def _check_positive(**values):
  for name, value in values.items():
    if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
      raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _train_example(index, rng, *, source, sample_rate, channels, length):
  audio, rate = source[index]
  audio = audio_transforms.prepare(audio, rate, sample_rate=sample_rate, channels=channels)
  return {"audio": audio_transforms.random_crop(audio, rng, length)}


def _eval_example(index, *, source, num_real, sample_rate, channels, length):
  if index >= num_real:  # padding, so every process gets the same number of full batches
    return {"audio": np.zeros((length, channels), np.float32), "mask": False}
  audio, rate = source[index]
  audio = audio_transforms.prepare(audio, rate, sample_rate=sample_rate, channels=channels)
  return {"audio": audio_transforms.eval_crop(audio, length), "mask": True}


def make_audio_dataset(spec: str, *, sample_rate: int, channels: int, crop_length: int,
                       batch_size: int, train: bool, split: str | None = None, seed: int = 0,
                       num_examples: int | None = None, process_index: int = 0,
                       process_count: int = 1, data_dir: str | None = None,
                       num_threads: int = 2) -> grain.IterDataset:
  """A grain IterDataset of {"audio": float32 [batch_size, crop_length, channels]} (per process).

  train=True: shuffled random crops, repeated forever. train=False: one pass in order, the first
  `crop_length` samples of each clip (zero-padded), padded to whole global batches, with
  "mask" [batch_size] False on padding. `iter()` gives an iterator whose state resumes.
  """
  _check_positive(sample_rate=sample_rate, channels=channels, crop_length=crop_length,
                  batch_size=batch_size, process_count=process_count,
                  num_examples=num_examples)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is not in [0, {process_count}).")
  source = open_audio_source(spec, split, train=train, sample_rate=sample_rate,
                             data_dir=data_dir)
  n = len(source) if num_examples is None else num_examples
  if n > len(source):
    raise ValueError(f"num_examples={num_examples}, but {spec} has only {len(source)} clips.")
  global_batch = batch_size * process_count
  kwargs = dict(source=source, sample_rate=sample_rate, channels=channels, length=crop_length)
  if train:
    ds = grain.MapDataset.range(n).seed(seed).shuffle().repeat(None)
    ds = ds.random_map(functools.partial(_train_example, **kwargs))
  else:
    padded = -(-n // global_batch) * global_batch
    ds = grain.MapDataset.range(padded).map(functools.partial(_eval_example, num_real=n,
                                                              **kwargs))
  ds = ds[process_index::process_count]
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * batch_size)
  return ds.to_iter_dataset(read).batch(batch_size, drop_remainder=True)


def make_audio_eval_batches(spec: str, *, sample_rate: int, channels: int, length: int,
                            batch_size: int, num_clips: int | None = None,
                            split: str | None = None,
                            data_dir: str | None = None) -> list[np.ndarray]:
  """The first `num_clips` eval clips (all when None) as float32 [b, length, C] batches, in
  memory; the last batch may be smaller."""
  ds = make_audio_dataset(spec, sample_rate=sample_rate, channels=channels, crop_length=length,
                          batch_size=batch_size, train=False, split=split,
                          num_examples=num_clips, data_dir=data_dir)
  return [batch["audio"][batch["mask"]] for batch in ds]
