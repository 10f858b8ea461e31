"""Reading and writing video files with PyAV (FFmpeg): uint8 [T, H, W, 3] RGB frames."""
import contextlib
import pathlib

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


class VideoReadError(ValueError):
  """A file that is not a readable video (missing, truncated, no video stream, no frames)."""


def _resized(frame, short_side):
  if short_side is None:
    return frame.to_ndarray(format="rgb24")
  w, h = frame.width, frame.height
  scale = short_side / min(w, h)
  if scale >= 1.0:
    return frame.to_ndarray(format="rgb24")
  # Shrinking with FFmpeg's area filter: antialiased, and far cheaper than full-size RGB.
  size = max(1, round(w * scale)), max(1, round(h * scale))
  return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")


@contextlib.contextmanager
def _video_stream(path):
  """(container, first video stream, fps) of `path`; FFmpeg's errors become VideoReadError."""
  import av
  try:
    with av.open(str(path)) as container:
      if not container.streams.video:
        raise VideoReadError(f"{path}: no video stream")
      stream = container.streams.video[0]
      yield container, stream, float(stream.average_rate or stream.guessed_rate or 0.0)
  except VideoReadError:
    raise
  except Exception as e:  # FFmpeg's errors (invalid data, truncated files) have many types
    raise VideoReadError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e


def read_video(path, *, short_side: int | None = None,
               max_frames: int | None = None) -> tuple[np.ndarray, float]:
  """(uint8 [T, H, W, 3], frames per second) of the first video stream of `path`.

  short_side: shrink frames (never enlarge) so that their shorter side is about this long.
  max_frames: stop after this many frames.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise VideoReadError(f"video file not found: {path}")
  frames = []
  with _video_stream(path) as (container, stream, fps):
    for frame in container.decode(stream):
      frames.append(_resized(frame, short_side))
      if max_frames is not None and len(frames) >= max_frames:
        break
  if not frames:
    raise VideoReadError(f"{path}: the video stream decodes to no frames")
  if fps <= 0:
    raise VideoReadError(f"{path}: the video stream declares no frame rate")
  return np.stack(frames), fps


def probe_video(path) -> tuple[int, float]:
  """(frame count, fps) from the container header, decoding nothing when it says; raises
  VideoReadError for a file FFmpeg cannot open."""
  with _video_stream(path) as (container, stream, fps):
    count = stream.frames or sum(1 for _ in container.decode(stream))
  if count <= 0 or fps <= 0:
    raise VideoReadError(f"{path}: {count} frames at {fps} fps")
  return int(count), fps


def write_video(path, frames, fps: float = 8.0):
  """Writes uint8 (or float [0, 1]) [T, H, W, 3] frames as H.264 MP4 or as a looping GIF,
  by the suffix of `path`. MP4 frames are padded to even sizes (yuv420p needs them)."""
  import av
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"frames must be [T, H, W, 3]; got shape {frames.shape}")
  if frames.dtype != np.uint8:
    frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
  path = pathlib.Path(path)
  gif = path.suffix.lower() == ".gif"
  if not gif and path.suffix.lower() != ".mp4":
    raise ValueError(f"write_video writes .mp4 or .gif, not {path.suffix!r}")
  if not gif:
    pad = ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0))
    frames = np.pad(frames, pad, mode="edge")
  from fractions import Fraction
  with av.open(str(path), "w") as container:
    stream = container.add_stream("gif" if gif else "libx264",
                                  rate=Fraction(fps).limit_denominator(1000))
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "rgb8" if gif else "yuv420p"
    if not gif:
      stream.options = {"crf": "18"}
    for image in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
