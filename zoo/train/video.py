"""What the shared trainer does differently for video tokenizers: data, evaluation, examples.

A video model is one whose config has a `frame_num`. It trains on random clips of
`frame_num` frames at its `input_size` and is evaluated on the fixed clips of
`config.eval_data` with PSNR (per clip, over all its frames, as LARP's evaluator) and SSIM
(per frame, averaged per clip); every evaluation saves one original | reconstruction clip side
by side as MP4 and a frame-grid PNG for a person to look at.
"""
import pathlib

import jax.numpy as jnp
import numpy as np

from zoo.data import make_video_dataset, make_video_eval_batches
from zoo.evals.video_reconstruction import clip_psnr, clip_ssim, save_examples
from zoo.train.model_state import merge_model


def is_video_model(model_config) -> bool:
  return hasattr(model_config, "frame_num")


def make_train_stream(config, model, *, process_index: int, process_count: int):
  cfg = model.config
  return iter(make_video_dataset(
      config.data, num_frames=cfg.frame_num, size=cfg.input_size,
      batch_size=config.batch_size // process_count, train=True, seed=config.seed,
      frame_stride=config.get("frame_stride", 1), process_index=process_index,
      process_count=process_count))


def make_eval_clips(config, model) -> list[np.ndarray]:
  cfg = model.config
  return make_video_eval_batches(
      config.eval_data, num_frames=cfg.frame_num, size=cfg.input_size,
      batch_size=config.eval_batch_size, num_clips=config.num_eval_clips,
      frame_stride=config.get("frame_stride", 1))


def reconstruct_video(params, video, net_params, batch_stats=None, *, graphdef, rest,
                      teacher_graphdef=None):
  """Video evaluation: clipped reconstructions with per-clip PSNR and SSIM."""
  del net_params, teacher_graphdef
  model = merge_model(graphdef, params, rest, batch_stats)
  recon = jnp.clip(model(video, train=False)["recon"].astype(jnp.float32), 0.0, 1.0)
  return recon, {"psnr": clip_psnr(video, recon), "ssim": clip_ssim(video, recon)}


def save_video_example(directory, stem: str, video: np.ndarray, recon: np.ndarray):
  """<stem>.mp4 (original | reconstruction) and <stem>_frames.png for a person to look at."""
  directory = pathlib.Path(directory)
  save_examples(video, recon, videos=(directory / f"{stem}.mp4",),
                frames=directory / f"{stem}_frames.png")
