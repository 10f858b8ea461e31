"""zoo.data for video: the built-in clips, video folders (bad files reported and skipped),
TFDS video datasets, temporal sampling, crops, and MP4 / GIF round trips."""
import logging

import numpy as np
import pytest
import tensorflow_datasets as tfds

from zoo.data import (VideoReadError, make_video_dataset, make_video_eval_batches, read_video,
                      write_video)
from zoo.data import video_transforms as vt
from zoo.data.video_folder import VideoFolder
from zoo.data.video_samples import VIDEOS, SampleClips, load_clip_video


def test_builtin_clips_train_stream():
  it = iter(make_video_dataset("builtin:clips", num_frames=8, size=32, batch_size=3, train=True))
  a, b = next(it)["video"], next(it)["video"]
  assert a.shape == (3, 8, 32, 32, 3) and a.dtype == np.float32
  assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.05  # real pictures, not blanks
  assert not np.allclose(a, b)
  # Consecutive frames of a clip are consecutive video frames: close but not equal.
  assert 0 < np.abs(a[:, 1:] - a[:, :-1]).mean() < 0.1


def test_builtin_splits_are_disjoint_in_time():
  train, held_out = SampleClips("train"), SampleClips("eval")
  for i, name in enumerate(VIDEOS):
    whole, fps = load_clip_video(name)
    a, b = train[i][0], held_out[i][0]
    assert len(a) == int(0.75 * len(whole)) and len(a) + len(b) == len(whole)
    np.testing.assert_array_equal(np.concatenate([a, b]), whole)
    assert min(whole.shape[1:3]) == 144 and fps > 20
  assert [len(load_clip_video(n)[0]) for n in VIDEOS] == [250, 132, 120]


def test_builtin_eval_clips_are_fixed_windows():
  first = make_video_eval_batches("builtin:clips", num_frames=16, size=32, batch_size=4)
  again = make_video_eval_batches("builtin:clips", num_frames=16, size=32, batch_size=4)
  clips = np.concatenate(first)
  # Held-out frames 63 + 33 + 30 -> 16-frame windows every 8 frames: 6 + 3 + 2.
  assert clips.shape == (11, 16, 32, 32, 3)
  np.testing.assert_array_equal(clips, np.concatenate(again))
  # Window 1 starts 8 frames into window 0.
  np.testing.assert_array_equal(clips[1, :8], clips[0, 8:])


def test_eval_split_across_processes():
  kwargs = dict(num_frames=16, size=16, batch_size=4, train=False, process_count=2)
  p0 = list(make_video_dataset("builtin:clips", process_index=0, **kwargs))
  p1 = list(make_video_dataset("builtin:clips", process_index=1, **kwargs))
  assert len(p0) == len(p1) == 2  # 11 clips padded to 16 = 2 global batches of 8
  assert sum(int(b["mask"].sum()) for b in p0 + p1) == 11


def test_clip_indices_stride_and_frame_rate():
  np.testing.assert_array_equal(vt.clip_indices(100, 4, vt.frame_step(25.0, stride=3), 10),
                                [10, 13, 16, 19])
  # 30 fps sampled at 12 fps: every 2.5 frames, the nearest earlier frame.
  np.testing.assert_array_equal(vt.clip_indices(100, 4, vt.frame_step(30.0, target_fps=12), 0),
                                [0, 2, 5, 7])
  with pytest.raises(vt.ClipTooShortError, match="needs 16 source frames"):
    vt.clip_indices(10, 16, 1.0, 0)


def test_resize_crop_center_and_random():
  clip = np.zeros((2, 40, 80, 3), np.uint8)
  clip[:, :, 40:] = 255  # right half white
  center = vt.resize_crop(clip, 20)
  assert center.shape == (2, 20, 20, 3)
  assert center[:, :, :9].max() == 0 and center[:, :, 11:].min() == 255
  rng = np.random.default_rng(0)
  crops = [vt.resize_crop(clip, 20, rng=rng) for _ in range(8)]
  assert len({c.mean().round(3) for c in crops}) > 1  # different offsets / flips
  for c in crops:  # one crop for every frame of the clip
    np.testing.assert_array_equal(c[0], c[1])


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_write_read_round_trip(tmp_path, suffix):
  t = np.linspace(0, 1, 6)[:, None, None, None]
  frames = (np.broadcast_to(t, (6, 21, 33, 3)) * 255).astype(np.uint8)  # odd sizes
  path = tmp_path / f"ramp{suffix}"
  write_video(path, frames, fps=10)
  back, fps = read_video(path)
  assert back.shape[0] == 6 and back.shape[1:3] in ((21, 33), (22, 34)) and fps == 10
  means = back[:, :21, :33].mean(axis=(1, 2, 3))
  np.testing.assert_allclose(means, frames.mean(axis=(1, 2, 3)), atol=6)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("videos")
  frames, _ = SampleClips("eval")[0]
  write_video(root / "a.mp4", frames[:40], fps=25)
  write_video(root / "sub_b.mp4", frames[40:80], fps=25)
  write_video(root / "short.mp4", frames[:5], fps=25)
  (root / "broken.mp4").write_bytes(b"\x00not a video" * 50)
  (root / "notes.txt").write_text("not listed")
  return root


def test_folder_reports_and_skips_unreadable_files(video_folder, caplog):
  with caplog.at_level(logging.WARNING):
    source = VideoFolder(str(video_folder))
  assert [p.name for p in source.files] == ["a.mp4", "short.mp4", "sub_b.mp4"]
  assert [p.name for p, _ in source.skipped] == ["broken.mp4"]
  assert "broken.mp4" in caplog.text


def test_folder_eval_masks_too_short_videos(video_folder, caplog):
  with caplog.at_level(logging.WARNING):
    batches = list(make_video_dataset(f"folder:{video_folder}", num_frames=16, size=32,
                                      batch_size=4, train=False, eval_clip_stride=None))
  assert len(batches) == 1
  np.testing.assert_array_equal(batches[0]["mask"], [True, False, True, False])
  assert "5" in caplog.text and "needs 16" in caplog.text


def test_folder_train_never_draws_the_short_video(video_folder):
  it = iter(make_video_dataset(f"folder:{video_folder}", num_frames=16, size=32, batch_size=4,
                               train=True, seed=1))
  for _ in range(3):
    assert next(it)["video"].shape == (4, 16, 32, 32, 3)


def test_unreadable_inputs_are_clear(tmp_path):
  with pytest.raises(VideoReadError, match="not found"):
    read_video(tmp_path / "missing.mp4")
  (tmp_path / "bad.mp4").write_bytes(b"junk" * 10)
  with pytest.raises(VideoReadError, match="not a readable video"):
    read_video(tmp_path / "bad.mp4")
  with pytest.raises(ValueError, match="none of the 1 video files"):
    VideoFolder(str(tmp_path))
  with pytest.raises(ValueError, match="Unknown video data spec"):
    make_video_dataset("clips", num_frames=4, size=8, batch_size=1, train=True)
  with pytest.raises(ValueError, match="num_frames must be a positive integer"):
    make_video_dataset("builtin:clips", num_frames=0, size=8, batch_size=1, train=True)


class ZooTinyVideos(tfds.core.GeneratorBasedBuilder):
  """Videos of 12 + i frames whose every pixel of frame t of video i is 10 i + t."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "video": tfds.features.Tensor(shape=(None, 8, 12, 3), dtype=np.uint8)}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(0), "test": self._generate_examples(3)}

  def _generate_examples(self, offset):
    for i in range(offset, offset + 3):
      t = np.arange(12 + i, dtype=np.uint8)[:, None, None, None] + 10 * i
      yield i, {"video": np.broadcast_to(t, (12 + i, 8, 12, 3)).copy()}


def test_tfds_video_dataset(tmp_path):
  ZooTinyVideos(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
  batches = make_video_eval_batches("tfds:zoo_tiny_videos", num_frames=4, size=8, batch_size=3,
                                    eval_clip_stride=None, frame_stride=2,
                                    data_dir=str(tmp_path))
  clips = np.round(batches[0] * 255).astype(int)
  assert clips.shape == (3, 4, 8, 8, 3)  # the test split, first frames, every 2nd frame
  # TFDS orders a split's examples by key hash: compare the set of clips.
  np.testing.assert_array_equal(sorted(clips[:, :, 0, 0, 0].tolist()),
                                [[30, 32, 34, 36], [40, 42, 44, 46], [50, 52, 54, 56]])
