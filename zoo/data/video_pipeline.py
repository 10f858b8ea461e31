"""From a data spec to per-process batches of video clips, as pipeline.py does for images.

Specs: `builtin:clips` (zoo/data/video_samples.py, no download), `folder:/path` (video files,
decoded with PyAV), `tfds:NAME` (a prepared TFDS video dataset, e.g. `tfds:ucf101`).

Training clips start at a random frame of a random video, with a random crop and flip.
Evaluation clips are fixed windows: every `eval_clip_stride` frames of every video, or, with
`eval_clip_stride=None`, the first `num_frames` frames of each video (the rFVD protocols).
A video that cannot be read, or is too short for a clip, is reported (a warning naming it)
and skipped: training draws another video, evaluation masks the clip out.
"""
import functools

import grain
import numpy as np
from absl import logging

from zoo.data import video_transforms as vt
from zoo.data.tfds_source import TfdsVideos
from zoo.data.video_folder import VideoFolder
from zoo.data.video_io import VideoReadError
from zoo.data.video_samples import SampleClips

SPECS = ("builtin:clips", "folder:/path", "tfds:NAME")
_reported: set = set()


def open_video_source(spec: str, split: str | None, *, train: bool, size: int,
                      data_dir: str | None = None):
  prefix, sep, rest = spec.partition(":")
  if sep and prefix == "builtin" and rest == "clips":
    return SampleClips(split or ("train" if train else "eval"))
  if sep and prefix == "folder" and rest:
    return VideoFolder(rest, short_side=2 * size)  # decode small: memory and speed
  if sep and prefix == "tfds" and rest:
    return TfdsVideos(rest, split or ("train" if train else "test"), data_dir=data_dir)
  raise ValueError(f"Unknown video data spec {spec!r}; expected one of {', '.join(SPECS)}.")


def _report(key, message):
  if key not in _reported:  # once per video, not once per draw
    _reported.add(key)
    logging.warning("skipping video: %s", message)


def _load(source, index):
  """(uint8 frames, fps) of video `index`, or None (reported) when it cannot be read."""
  try:
    return source[index]
  except VideoReadError as e:
    _report(("read", index), str(e))
    return None


def _train_example(index, rng, *, source, num_frames, size, step):
  n = len(source)
  for attempt in range(n):  # another video when one is unreadable or too short
    i = (index + attempt) % n
    loaded = _load(source, i)
    if loaded is None:
      continue
    frames, fps = loaded
    s = vt.frame_step(fps, **step)
    room = len(frames) - vt.span(num_frames, s)
    if room < 0:
      _report(("short", i), f"video {i}: {len(frames)} frames, a clip of {num_frames} frames "
              f"{s:g} apart needs {vt.span(num_frames, s)}")
      continue
    clip = frames[vt.clip_indices(len(frames), num_frames, s, int(rng.integers(0, room + 1)))]
    return {"video": vt.to_float(vt.resize_crop(clip, size, rng=rng))}
  raise ValueError(f"no video of the source yields a clip of {num_frames} frames")


def _eval_example(position, *, source, windows, num_frames, size, step):
  blank = {"video": np.zeros((num_frames, size, size, 3), np.float32), "mask": False}
  if position >= len(windows):  # padding to whole global batches
    return blank
  index, start = windows[position]
  loaded = _load(source, index)
  if loaded is None:
    return blank
  frames, fps = loaded
  try:
    clip = frames[vt.clip_indices(len(frames), num_frames, vt.frame_step(fps, **step), start)]
  except vt.ClipTooShortError as e:
    _report(("short", index, start), f"video {index}: {e}")
    return blank
  return {"video": vt.to_float(vt.resize_crop(clip, size)), "mask": True}


def eval_windows(source, num_frames: int, step: dict, clip_stride: int | None):
  """[(video index, start frame)] of the fixed evaluation clips."""
  if clip_stride is None:
    return [(i, 0) for i in range(len(source))]
  windows = []
  for i in range(len(source)):
    total, fps = source.info(i)
    need = vt.span(num_frames, vt.frame_step(fps, **step))
    windows += [(i, s) for s in range(0, total - need + 1, clip_stride)]
  return windows


def make_video_dataset(spec: str, *, num_frames: int, size: int, batch_size: int, train: bool,
                       split: str | None = None, seed: int = 0, frame_stride: int = 1,
                       target_fps: float | None = None, eval_clip_stride: int | None = 8,
                       num_examples: int | None = None, process_index: int = 0,
                       process_count: int = 1, data_dir: str | None = None,
                       num_threads: int = 2) -> grain.IterDataset:
  """A grain IterDataset of {"video": float32 [batch_size, num_frames, size, size, 3] in [0, 1]}
  per process ("mask" [batch_size] too for evaluation: False on padding and skipped clips).

  frame_stride / target_fps: temporal sampling (every `frame_stride`-th source frame, or the
  nearest frames at `target_fps`). num_examples: the first videos (train) or clips (eval).
  """
  for name, value in dict(num_frames=num_frames, size=size, batch_size=batch_size,
                          process_count=process_count, frame_stride=frame_stride).items():
    if not isinstance(value, (int, np.integer)) or value <= 0:
      raise ValueError(f"{name} must be a positive integer, got {value!r}.")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is not in [0, {process_count}).")
  source = open_video_source(spec, split, train=train, size=size, data_dir=data_dir)
  step = dict(stride=frame_stride, target_fps=target_fps)
  global_batch = batch_size * process_count
  kwargs = dict(source=source, num_frames=num_frames, size=size, step=step)
  if train:
    n = len(source) if num_examples is None else min(num_examples, len(source))
    ds = grain.MapDataset.range(n).seed(seed).shuffle().repeat(None)
    ds = ds.random_map(functools.partial(_train_example, **kwargs))
  else:
    windows = eval_windows(source, num_frames, step, eval_clip_stride)
    if num_examples is not None:
      if num_examples > len(windows):
        raise ValueError(f"num_examples={num_examples}, but {spec} gives only {len(windows)} "
                         "evaluation clips")
      windows = windows[:num_examples]
    if not windows:
      raise ValueError(f"{spec} gives no evaluation clip of {num_frames} frames")
    padded = -(-len(windows) // global_batch) * global_batch
    ds = grain.MapDataset.range(padded).map(functools.partial(_eval_example, windows=windows,
                                                              **kwargs))
  ds = ds[process_index::process_count]
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * batch_size)
  return ds.to_iter_dataset(read).batch(batch_size, drop_remainder=True)


def make_video_eval_batches(spec: str, *, num_frames: int, size: int, batch_size: int,
                            num_clips: int | None = None, split: str | None = None,
                            eval_clip_stride: int | None = 8, **kwargs) -> list[np.ndarray]:
  """The fixed evaluation clips (the first `num_clips`) as float32 [b, T, S, S, 3] batches in
  memory, skipped clips left out; the last batch may be smaller."""
  ds = make_video_dataset(spec, num_frames=num_frames, size=size, batch_size=batch_size,
                          train=False, split=split, num_examples=num_clips,
                          eval_clip_stride=eval_clip_stride, **kwargs)
  batches = [b["video"][b["mask"]] for b in ds]
  return [b for b in batches if len(b)]
