"""`folder:/path` for video: every video file under a directory, in sorted order.

Each file's header is probed once when the folder is opened; files FFmpeg cannot open are
reported (a warning naming each file and why) and left out, so one bad file never stops a run.
"""
import pathlib

from absl import logging

from zoo.data.video_io import VIDEO_SUFFIXES, VideoReadError, probe_video, read_video


def find_videos(root: str) -> list[pathlib.Path]:
  root_path = pathlib.Path(root)
  if not root_path.is_dir():
    raise FileNotFoundError(f"video folder not found: {root}")
  files = sorted(p for p in root_path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
  if not files:
    raise ValueError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {root}")
  return files


class VideoFolder:
  """Random-access source of (uint8 [T, H, W, 3], fps) from the readable videos under `root`."""

  def __init__(self, root: str, *, short_side: int | None = None):
    self.short_side = short_side
    self.files, self.infos, self.skipped = [], [], []
    for path in find_videos(root):
      try:
        count, fps = probe_video(path)
      except VideoReadError as e:
        self.skipped.append((path, str(e)))
        logging.warning("skipping unreadable video: %s", e)
        continue
      self.files.append(path)
      self.infos.append((count, fps))
    if not self.files:
      raise ValueError(f"none of the {len(self.skipped)} video files under {root} is readable: "
                       + "; ".join(why for _, why in self.skipped[:5]))

  def __len__(self):
    return len(self.files)

  def info(self, index: int) -> tuple[int, float]:
    """(frame count, fps) from the header probed at opening: nothing is decoded."""
    return self.infos[index]

  def __getitem__(self, index: int):
    return read_video(self.files[index], short_side=self.short_side)
