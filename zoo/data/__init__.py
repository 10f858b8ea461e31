"""Grain pipelines. Images: `make_image_dataset(spec, ...)` for training and evaluation
streams, `make_eval_batches(spec, ...)` for a small fixed eval set (specs builtin:photos,
folder:/path, tfds:NAME). Audio: `make_audio_dataset` / `make_audio_eval_batches` (specs
builtin:audio, folder:/path of WAVs, tfds:NAME), `read_wav`, `write_wav`, `resample`.
Video: `make_video_dataset` / `make_video_eval_batches` (specs builtin:clips, folder:/path of
video files, tfds:NAME), `read_video`, `write_video`.
"""
from zoo.data.audio_io import read_wav, write_wav
from zoo.data.audio_pipeline import make_audio_dataset, make_audio_eval_batches
from zoo.data.audio_transforms import resample
from zoo.data.video_io import VideoReadError, read_video, write_video
from zoo.data.video_pipeline import make_video_dataset, make_video_eval_batches
from zoo.data.pipeline import (host_inputs_batch, make_eval_batches, make_image_dataset,
                               open_source)

__all__ = ["host_inputs_batch", "make_audio_dataset", "make_audio_eval_batches", "make_eval_batches",
           "make_image_dataset", "make_video_dataset", "make_video_eval_batches", "open_source",
           "read_video", "read_wav", "resample", "VideoReadError", "write_video", "write_wav"]
