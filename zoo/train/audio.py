"""What the shared trainer does differently for audio codecs: data, losses, evaluation.

An audio model is one whose config has a `sample_rate`. It trains on random crops of
`config.crop_seconds` and is evaluated on fixed clips of `config.eval_seconds` with the
mel distance and SI-SDR of DAC's evaluation; one original/reconstruction WAV pair and their
spectrograms are saved at every evaluation for a person to listen to and look at.
"""
import pathlib

import jax.numpy as jnp
import numpy as np

from zoo.data import make_audio_dataset, make_audio_eval_batches, write_wav
from zoo.evals.audio_metrics import mel_distance, si_sdr
from zoo.evals.spectrogram import save_spectrogram_pair
from zoo.train.audio_losses import mel_loss, stft_loss, waveform_l1
from zoo.train.model_state import merge_model


def is_audio_model(model_config) -> bool:
  return hasattr(model_config, "sample_rate")


def _samples(seconds: float, model_config, hop_length: int) -> int:
  """`seconds` of audio rounded up to whole frames of the codec."""
  samples = int(round(seconds * model_config.sample_rate))
  return -(-samples // hop_length) * hop_length


def make_train_stream(config, model, *, process_index: int, process_count: int):
  cfg = model.config
  return iter(make_audio_dataset(
      config.data, sample_rate=cfg.sample_rate, channels=cfg.channels,
      crop_length=_samples(config.crop_seconds, cfg, model.hop_length),
      batch_size=config.batch_size // process_count, train=True, seed=config.seed,
      process_index=process_index, process_count=process_count))


def make_eval_clips(config, model) -> list[np.ndarray]:
  cfg = model.config
  return make_audio_eval_batches(
      config.eval_data, sample_rate=cfg.sample_rate, channels=cfg.channels,
      length=_samples(config.eval_seconds, cfg, model.hop_length),
      batch_size=config.eval_batch_size, num_clips=config.num_eval_clips)


def audio_reconstruction_loss(out: dict, audio, weights, sample_rate: int):
  """(scalar loss, scalar metrics): DAC's multi-scale mel, STFT and waveform L1 terms and the
  quantizer's commitment and codebook losses, each weighted by `weights.<name>` (0 skips it)."""
  recon = out["recon"].astype(jnp.float32)
  terms = {
      "mel": lambda: mel_loss(audio, recon, sample_rate),
      "stft": lambda: stft_loss(audio, recon),
      "waveform_l1": lambda: waveform_l1(audio, recon),
      "commitment": lambda: out["commitment_loss"],
      "codebook": lambda: out["codebook_loss"],
  }
  loss = jnp.zeros((), jnp.float32)
  metrics = {}
  for name, term in terms.items():
    weight = weights.get(name, 0.0)
    if weight:
      value = term()
      loss += weight * value
      metrics[f"{name}_loss"] = value
  metrics.update(out.get("stats", {}))
  metrics["loss"] = loss
  return loss, metrics


def reconstruct_audio(params, audio, net_params, batch_stats=None, *, graphdef, rest,
                      teacher_graphdef=None):
  """Audio evaluation: clipped reconstructions with per-clip mel distance and SI-SDR."""
  del net_params, teacher_graphdef
  model = merge_model(graphdef, params, rest, batch_stats)
  recon = jnp.clip(model(audio, train=False)["recon"].astype(jnp.float32), -1.0, 1.0)
  sample_rate = model.config.sample_rate
  return recon, {"mel_distance": mel_distance(audio, recon, sample_rate),
                 "si_sdr": si_sdr(audio, recon)}


def save_audio_example(directory, stem: str, audio: np.ndarray, recon: np.ndarray,
                       sample_rate: int):
  """<stem>_original.wav, <stem>_recon.wav and <stem>_spectrograms.png for the first clip."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  write_wav(directory / f"{stem}_original.wav", audio[0], sample_rate)
  write_wav(directory / f"{stem}_recon.wav", recon[0], sample_rate)
  save_spectrogram_pair(directory / f"{stem}_spectrograms.png", audio[0], recon[0], sample_rate)

