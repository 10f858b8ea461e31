"""Fréchet Video Distance: Kinetics-400 I3D logits of two clip sets, float64 Gaussian
statistics, the Fréchet distance (the FID code's scipy sqrtm formula, as StyleGAN-V's FVD).

Preprocessing, named by the reference that pins it:
  videogpt   VideoGPT / TATS / OmniTokenizer (fvd.py `preprocess`): every frame bilinearly
             resized to 224x224 (F.interpolate, align_corners=False, no antialias, the aspect
             ratio not kept), then [0, 1] -> [-1, 1].
  styleganv  StyleGAN-V / LARP (`preprocess_single`): the shorter side bilinearly to 224 (the
             longer one ceil(long * 224 / short)), a centre crop at floor offsets, -> [-1, 1].
Square clips, the usual case, give the same input under both.

The rFVD protocols of the papers are named presets (`PROTOCOLS`): the data, split, clip length,
resolution, frame sampling and the number of clips are pinned, because each moves the number.
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.perception.i3d import INPUT_SIZE, MIN_FRAMES
from zoo.evals.fid import FeatureStatistics, frechet_distance

FEATURE_DIM = 400
RESIZE_MODES = ("videogpt", "styleganv")


@dataclasses.dataclass(frozen=True)
class FVDProtocol:
  data: str
  split: str
  num_frames: int
  size: int
  num_clips: int | None  # None: every video of the split
  frame_stride: int = 1
  resize: str = "styleganv"
  note: str = ""


PROTOCOLS = {
    # LARP eval/eval_larp_tokenizer.py: UCFrFVDEvaluator over data/metadata/ucf101_train.csv
    # (all 9,537 train videos), 16 frames at the native rate, 128^2 (Resize + CenterCrop), the
    # StyleGAN-V TorchScript I3D. The official draws each clip's start at random; the zoo pins
    # the first 16 frames.
    "larp_ucf101": FVDProtocol("tfds:ucf101", "train", 16, 128, None, 1, "styleganv",
                               "LARP-L-long reports rFVD 20 (research/video_audio_3d.md 1.1)"),
    # OmniTokenizer fvd/fvd.py: FVD_SAMPLE_SIZE 2048 clips of 17 frames at 256^2, the VideoGPT
    # I3D and preprocessing.
    "omnitokenizer_ucf101": FVDProtocol("tfds:ucf101", "test", 17, 256, 2048, 1, "videogpt"),
}


def check_clips(videos, name: str = "clips"):
  shape = getattr(videos, "shape", None)
  if shape is None or len(shape) != 5 or shape[-1] != 3:
    raise ValueError(f"FVD {name} must be NTHWC [B, T, H, W, 3] in [0, 1]; got shape {shape}")
  if shape[1] < MIN_FRAMES:
    raise ValueError(f"FVD {name} need at least {MIN_FRAMES} frames (the I3D's temporal "
                     f"pooling); got {shape[1]}")
  if not np.issubdtype(np.asarray(videos[:0]).dtype, np.floating):
    raise TypeError(f"FVD {name} must be float in [0, 1]; got {videos.dtype}")


def _bilinear(frames, size_hw):
  # jax.image.resize's bilinear without antialias = F.interpolate(align_corners=False).
  return jax.image.resize(frames, (frames.shape[0], *size_hw, frames.shape[-1]), "bilinear",
                          antialias=False)


def preprocess(videos, resize: str = "styleganv"):
  """[B, T, H, W, 3] in [0, 1] -> [B, T, 224, 224, 3] in [-1, 1] (see the module docstring)."""
  if resize not in RESIZE_MODES:
    raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
  b, t, h, w, c = videos.shape
  frames = videos.reshape(b * t, h, w, c).astype(jnp.float32)
  if resize == "videogpt":
    frames = _bilinear(frames, (INPUT_SIZE, INPUT_SIZE))
  else:
    scale = INPUT_SIZE / min(h, w)
    size = ((INPUT_SIZE, math.ceil(w * scale)) if h < w else
            (math.ceil(h * scale), INPUT_SIZE))
    frames = _bilinear(frames, size)
    top, left = (size[0] - INPUT_SIZE) // 2, (size[1] - INPUT_SIZE) // 2
    frames = frames[:, top:top + INPUT_SIZE, left:left + INPUT_SIZE]
  return (frames * 2.0 - 1.0).reshape(b, t, INPUT_SIZE, INPUT_SIZE, c)


@functools.partial(nnx.jit, static_argnames="resize")
def i3d_features(i3d, videos, resize: str = "styleganv"):
  """[B, T, H, W, 3] in [0, 1] -> I3D logits [B, 400] (float32)."""
  return i3d(preprocess(videos, resize))


class FVDFeatures:
  """Accumulates I3D features of clips batch by batch; `statistics()` gives mean and cov."""

  def __init__(self, i3d, *, resize: str = "styleganv"):
    self.i3d, self.resize = i3d, resize
    self.stats = FeatureStatistics(FEATURE_DIM)

  def update(self, videos) -> np.ndarray:
    check_clips(videos)
    feats = np.asarray(i3d_features(self.i3d, jnp.asarray(videos), resize=self.resize))
    self.stats.update(feats)
    return feats

  def statistics(self):
    return self.stats.result()


def fvd_from_features(real, fake) -> float:
  """FVD of two feature sets [N, 400] (float64 statistics, unbiased covariance)."""
  if min(len(real), len(fake)) < 2:
    raise ValueError("FVD needs at least two clips on each side (a covariance)")
  stats = []
  for feats in (real, fake):
    acc = FeatureStatistics(FEATURE_DIM)
    acc.update(feats)
    stats.append(acc.result())
  return frechet_distance(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma)


def fvd(i3d, real_batches, fake_batches, *, resize: str = "styleganv") -> float:
  """FVD between two iterables of [B, T, H, W, 3] clip batches in [0, 1]."""
  sides = []
  for batches in (real_batches, fake_batches):
    acc = FVDFeatures(i3d, resize=resize)
    for batch in batches:
      acc.update(batch)
    if acc.stats.count < 2:
      raise ValueError("FVD needs at least two clips on each side (a covariance)")
    sides.append(acc.statistics())
  return frechet_distance(sides[0].mu, sides[0].sigma, sides[1].mu, sides[1].sigma)
