"""What the shared trainer does for joint image-video tokenizers (OmniTokenizer).

A joint model is one whose config says `joint_image_video`. It trains on one stream that
mixes image batches [B, H, W, 3] (`config.image_data`) and clip batches [B, T, H, W, 3]
(`config.data`, `config.frame_num` frames), chosen per step by `config.sample_ratio`
(image, video) or strictly alternating (`config.force_alternation`, the official joint
stage); each batch may be resized to a random `config.resolution_scales` factor of the
model's resolution (the joint stage's multi-resolution training; sizes are rounded down to
what the model's patches and windows divide). Every shape is its own compiled step.

Evaluation runs the fixed eval clips (video PSNR / SSIM per clip) and eval images
(`image_psnr` / `image_ssim`), and saves the first clip batch as MP4 + frame grid.
"""
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np

from zoo.data import (make_eval_batches, make_image_dataset, make_video_dataset,
                      make_video_eval_batches)
from zoo.evals import psnr, ssim
from zoo.evals.video_reconstruction import clip_psnr, clip_ssim
from zoo.train.model_state import merge_model


def is_joint_model(model_config) -> bool:
  return bool(getattr(model_config, "joint_image_video", False))


def scaled_size(resolution: int, scale: float, multiple: int) -> int:
  size = int(resolution * scale) // multiple * multiple
  if size < multiple:
    raise ValueError(f"resolution scale {scale} of {resolution} leaves less than one "
                     f"{multiple}-pixel unit")
  return size


@functools.partial(jax.jit, static_argnums=1)
def _resize(x, size: int):
  shape = x.shape[:-3] + (size, size, x.shape[-1])
  return jnp.clip(jax.image.resize(x, shape, "bilinear", antialias=False), 0.0, 1.0)


def _on_host(x, size):
  if x.shape[-2] == size:
    return x
  with jax.default_device(jax.local_devices(backend="cpu")[0]):
    return np.asarray(_resize(x, size))


class MixedStream:
  """Yields {"video": batch}: image or clip batches by ratio (or alternating), each resized
  to one of `sizes` (uniformly drawn). Checkpointable as one iterator (grain's handler): its
  state holds both streams' positions and its own draws, so a resumed run sees the same
  batches."""

  def __init__(self, images, videos, *, sample_ratio, force_alternation: bool, sizes,
               seed: int):
    ratio = np.asarray(sample_ratio, np.float64)
    if ratio.shape != (2,) or ratio.min() < 0 or ratio.sum() <= 0:
      raise ValueError(f"sample_ratio must be (image, video) weights, got {sample_ratio}")
    self._streams, self._ratio = (images, videos), ratio / ratio.sum()
    self._alternate, self._sizes = force_alternation, tuple(int(s) for s in sizes)
    self._rng, self._count = np.random.default_rng(seed), 0

  def __iter__(self):
    return self

  def __next__(self):
    which = self._count % 2 if self._alternate else int(self._rng.choice(2, p=self._ratio))
    if self._ratio[which] == 0:
      which = 1 - which
    self._count += 1
    batch = next(self._streams[which])
    size = self._sizes[int(self._rng.integers(len(self._sizes)))]
    return {"video": _on_host(batch["image" if which == 0 else "video"], size)}

  def get_state(self) -> bytes:
    return json.dumps({"streams": [s.get_state() for s in self._streams],
                       "rng": self._rng.bit_generator.state, "count": self._count}).encode()

  def set_state(self, state: bytes):
    state = json.loads(state)
    for stream, s in zip(self._streams, state["streams"]):
      stream.set_state(s)
    self._rng.bit_generator.state = state["rng"]
    self._count = state["count"]

  def start_prefetch(self):
    for stream in self._streams:
      getattr(stream, "start_prefetch", lambda: None)()


def make_train_stream(config, model, *, process_index: int, process_count: int):
  cfg = model.config
  sizes = sorted({scaled_size(cfg.resolution, s, cfg.size_multiple)
                  for s in config.get("resolution_scales", (1.0,))})
  batch = config.batch_size // process_count
  common = dict(batch_size=batch, train=True, seed=config.seed, process_index=process_index,
                process_count=process_count)
  images = iter(make_image_dataset(config.image_data, image_size=cfg.resolution, **common))
  videos = iter(make_video_dataset(config.data, num_frames=config.frame_num,
                                   size=cfg.resolution,
                                   frame_stride=config.get("frame_stride", 1), **common))
  return MixedStream(images, videos, sample_ratio=tuple(config.sample_ratio),
                      force_alternation=config.force_alternation, sizes=sizes,
                      seed=config.seed + process_index)


def make_eval_batches_joint(config, model) -> list[np.ndarray]:
  """The fixed eval clips first (the example saved is a clip), then the eval images."""
  cfg = model.config
  clips = make_video_eval_batches(config.eval_data, num_frames=config.frame_num,
                                  size=cfg.resolution, batch_size=config.eval_batch_size,
                                  num_clips=config.num_eval_clips,
                                  frame_stride=config.get("frame_stride", 1))
  images = make_eval_batches(config.image_eval_data, image_size=cfg.resolution,
                             batch_size=config.eval_batch_size,
                             num_images=config.num_eval_images)
  return clips + images


def reconstruct_joint(params, batch, net_params, batch_stats=None, *, graphdef, rest,
                      teacher_graphdef=None):
  """Clipped reconstructions with per-clip (video) or per-image (image_) PSNR and SSIM."""
  del net_params, teacher_graphdef
  model = merge_model(graphdef, params, rest, batch_stats)
  recon = jnp.clip(model(batch, train=False)["recon"].astype(jnp.float32), 0.0, 1.0)
  if batch.ndim == 5:
    return recon, {"psnr": clip_psnr(batch, recon), "ssim": clip_ssim(batch, recon)}
  return recon, {"image_psnr": psnr(batch, recon), "image_ssim": ssim(batch, recon)}
