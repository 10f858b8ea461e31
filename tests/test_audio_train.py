"""The shared trainer on audio codecs: DAC with its GAN, EnCodec's EMA codebooks as carried
state, and eval.py writing results, WAV pairs and the per-level table."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from zoo.configs import dac as dac_configs
from zoo.configs import encodec as encodec_configs
from zoo.train.trainer import Trainer
from zoo.train.train_state import load_trained_model

pytestmark = pytest.mark.training  # long training checks: scheduled first


ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(**overrides):
  c = dac_configs.get_config("tiny")
  c.update(total_steps=6, log_every=3, eval_every=6, checkpoint_every=6, batch_size=8,
           num_eval_clips=8, eval_batch_size=8, crop_seconds=0.1, eval_seconds=0.25)
  c.gan.discriminator_start = 3
  c.gan.audio.update(periods=(2,), fft_sizes=(128,))  # one small MPD and MRD
  for key, value in overrides.items():
    target = c
    *parents, leaf = key.split(".")
    for p in parents:
      target = target[p]
    target[leaf] = value
  return c


def read_metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dac_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("dac")
  Trainer(tiny_config(), workdir).train()
  return workdir


def test_dac_trains_with_gan_and_writes_audio(dac_run):
  rows = read_metrics(dac_run)
  train = [r for r in rows if "loss" in r]
  assert "adversarial_loss" not in train[0] and "adversarial_loss" in train[-1]
  assert {"mel_loss", "commitment_loss", "codebook_loss", "feature_matching_loss",
          "discriminator_loss", "levels_kept"} <= set(train[-1])
  assert all(np.isfinite(r["loss"]) for r in train)
  evals = [r for r in rows if "eval/mel_distance" in r]
  assert [r["step"] for r in evals] == [0, 6] and "eval/si_sdr" in evals[-1]
  for suffix in ("original.wav", "recon.wav", "spectrograms.png"):
    assert (dac_run / "recon" / f"step_0000006_{suffix}").is_file()


def test_eval_py_on_the_run_writes_levels_table_and_wavs(dac_run, tmp_path):
  out = tmp_path / "eval"
  subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={dac_run}",
                  "--num-levels=1,3,6", "--seconds=0.25", "--num=8", "--batch-size=8",
                  f"--out={out}"], check=True, cwd=ROOT, capture_output=True)
  rows = [json.loads(line) for line in (out / "levels.jsonl").read_text().splitlines()]
  assert [r["num_levels"] for r in rows] == [1, 3, 6]
  assert [r["bitrate_kbps"] for r in rows] == [1.5, 4.5, 9.0]  # 250 frames/s x 6 bits
  assert all({"mel_distance", "stft_distance", "si_sdr", "codebook_usage"} <= set(r)
             for r in rows)
  assert (out / "levels.md").read_text().startswith("| levels | kbps |")
  assert (out / "levels.png").is_file()
  assert (out / "levels_03" / "clips" / "clip_0_recon.wav").is_file()
  assert (out / "levels_03" / "spectrograms.png").is_file()


def test_encodec_recipe_carries_ema_codebooks_and_uses_msstft(tmp_path):
  c = encodec_configs.get_config("tiny")
  c.update(total_steps=4, log_every=2, eval_every=4, checkpoint_every=4, batch_size=8,
           num_eval_clips=8, eval_batch_size=8, crop_seconds=0.1, eval_seconds=0.25)
  c.gan.discriminator_start = 0  # one compiled step, with the GAN
  c.gan.audio.msstft_n_ffts = (128,)
  trainer = Trainer(c, tmp_path)
  assert float(trainer.state["batch_stats"]["quantizer"]["levels"][0]["inited"][...][0]) == 0
  trainer.train()
  stats = trainer.state["batch_stats"]["quantizer"]["levels"][0]
  assert float(stats["inited"][...][0]) == 1  # k-means ran in the first step
  last = [r for r in read_metrics(tmp_path) if "loss" in r][-1]
  assert {"adversarial_loss", "feature_matching_loss", "waveform_l1_loss"} <= set(last)
  assert "codebook_loss" not in last  # EMA codebooks: no codebook loss term
  model = load_trained_model(tmp_path, weights="params")
  np.testing.assert_allclose(model.quantizer.levels[0].embed[...], stats["embed"][...])
