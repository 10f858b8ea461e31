"""`tfds:NAME`: a TFDS dataset the user already prepared, read by random access with
`tfds.data_source` (ArrayRecord or Parquet files). Never downloads or prepares anything.
"""
import numpy as np
import tensorflow_datasets as tfds

from zoo.data.transforms import to_rgb_uint8

_RANDOM_ACCESS_FORMATS = ("array_record", "parquet")


def _how_to_prepare(name: str, data_dir: str) -> str:
  return (
      f"Prepare it once, outside the zoo, with\n"
      f"  tfds build {name} --data_dir={data_dir} --file_format=array_record\n"
      f"(building needs TensorFlow; datasets with manual downloads such as imagenet2012 want "
      f"their files in {data_dir}/downloads/manual first), or point data_dir / $TFDS_DATA_DIR "
      f"at a directory where it is prepared.")


def open_builder(name: str, data_dir: str):
  """The prepared builder, or an error that says where TFDS looked and how to prepare it."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise FileNotFoundError(
        f"TFDS dataset {name!r} is neither a known TFDS name nor prepared under "
        f"data_dir={data_dir} (the data_dir argument or $TFDS_DATA_DIR).") from e
  root = builder.data_dir
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"TFDS dataset {name!r} is not prepared: TFDS looked in {root} (data_dir={data_dir}, "
        f"set by the data_dir argument or $TFDS_DATA_DIR). The zoo never downloads.\n"
        + _how_to_prepare(name, data_dir))
  formats = {f.value for f in builder.info.available_file_formats()}
  if not formats & set(_RANDOM_ACCESS_FORMATS):
    raise ValueError(
        f"TFDS dataset {name!r} in {root} is stored as {sorted(formats)}; random access (Grain) "
        f"needs one of {_RANDOM_ACCESS_FORMATS}. Convert it, e.g. with "
        f"`tfds convert_format --dataset_version_dir={root} --out_file_format=array_record`.")
  return builder


def open_split(name: str, split: str, data_dir: str | None, key: str):
  """The random-access source of one split, checked to hold the feature `key`."""
  data_dir = data_dir or tfds.core.constants.get_default_data_dir()
  features = open_builder(name, data_dir).info.features
  if key not in features:
    raise KeyError(f"TFDS dataset {name!r} has no feature {key!r}; features: {list(features)}.")
  return tfds.data_source(name, split=split, data_dir=data_dir, download=False)


class TfdsImages:
  """Random-access source of uint8 [H, W, 3] images from one split of a prepared TFDS dataset."""

  def __init__(self, name: str, split: str, data_dir: str | None = None, image_key="image"):
    self.source = open_split(name, split, data_dir, image_key)
    self.image_key = image_key

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index: int) -> np.ndarray:
    return to_rgb_uint8(self.source[index][self.image_key])


class TfdsAudio:
  """Random-access source of (float32 [T, C] in [-1, 1], rate) from a prepared TFDS dataset
  with an Audio feature (e.g. librispeech's 16 kHz int16 `speech`)."""

  def __init__(self, name: str, split: str, data_dir: str | None = None,
               audio_key: str | None = None):
    data_dir = data_dir or tfds.core.constants.get_default_data_dir()
    try:
      builder = open_builder(name, data_dir)
      features = builder.info.features
    except ModuleNotFoundError as e:
      if "tensorflow" not in str(e):
        raise
      raise ImportError(f"TFDS dataset {name!r}: TFDS's Audio feature needs TensorFlow "
                        "(pip install tensorflow-cpu); the zoo itself does not") from e
    audio_keys = [k for k, f in features.items() if getattr(f, "sample_rate", None)]
    key = audio_key or (audio_keys[0] if audio_keys else None)
    if key is None or key not in features:
      raise KeyError(f"TFDS dataset {name!r} has no audio feature{f' {audio_key!r}' if audio_key else ''}; "
                     f"features: {list(features)}.")
    feature = features[key]
    if not getattr(feature, "sample_rate", None):
      raise ValueError(f"TFDS dataset {name!r}: feature {key!r} declares no sample rate")
    self.rate = int(feature.sample_rate)
    self.scale = 1.0 if np.dtype(feature.dtype).kind == "f" else float(
        2 ** (8 * np.dtype(feature.dtype).itemsize - 1))
    self.source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    self.key = key

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index: int):
    audio = np.asarray(self.source[index][self.key]).astype(np.float32) / self.scale
    return (audio[:, None] if audio.ndim == 1 else audio), self.rate


class TfdsVideos:
  """Random-access source of (uint8 [T, H, W, 3], fps) from a prepared TFDS video dataset
  (e.g. ucf101, whose `video` feature holds 25 fps frames). TFDS stores no frame rate:
  `fps` says it (the default fits ucf101)."""

  def __init__(self, name: str, split: str, data_dir: str | None = None, video_key="video",
               fps: float = 25.0):
    self.source = open_split(name, split, data_dir, video_key)
    self.key, self.fps = video_key, fps

  def __len__(self):
    return len(self.source)

  def info(self, index: int) -> tuple[int, float]:
    return len(self.source[index][self.key]), self.fps

  def __getitem__(self, index: int):
    frames = np.asarray(self.source[index][self.key])
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
      raise ValueError(f"TFDS video {index} has shape {frames.shape}, not [T, H, W, 3]")
    if frames.shape[-1] == 1:
      frames = np.repeat(frames, 3, axis=-1)
    return frames.astype(np.uint8), self.fps
