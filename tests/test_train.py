"""The training loop: it learns, logs, checkpoints, and resumes exactly."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from zoo.configs import titok
from zoo.train.metrics_writer import read_metrics
from zoo.train.optimizer import decay_mask
from zoo.train.trainer import Trainer
from zoo.train.train_state import load_trained_model

pytestmark = pytest.mark.training  # long training checks: scheduled first

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(**overrides):
  config = titok.get_config("tiny")
  config.batch_size = 8
  config.eval_batch_size = 8
  config.num_eval_images = 8
  config.total_steps = 8
  config.warmup_steps = 2
  config.log_every = 1
  config.eval_every = 4
  config.checkpoint_every = 4
  config.update(overrides)
  return config


def test_loss_falls_and_metrics_are_logged(tmp_path):
  Trainer(tiny_config(total_steps=12), tmp_path).train()
  rows = read_metrics(tmp_path)
  losses = [r["loss"] for r in rows if "loss" in r]
  assert len(losses) == 12 and losses[-1] < losses[0]
  evals = [r for r in rows if "eval/psnr" in r]
  assert [r["step"] for r in evals] == [0, 4, 8, 12]
  assert evals[-1]["eval/psnr"] > evals[0]["eval/psnr"]
  assert (tmp_path / "recon" / "step_0000012.png").is_file()


def test_resume_matches_uninterrupted_run(tmp_path):
  full = Trainer(tiny_config(), tmp_path / "full").train()
  Trainer(tiny_config(), tmp_path / "split").train(until=4)
  resumed = Trainer(tiny_config(), tmp_path / "split")
  assert resumed.restore_if_any() and resumed.step == 4
  resumed = resumed.train()
  for a, b in zip(jax.tree.leaves(full["params"]), jax.tree.leaves(resumed["params"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  losses = lambda d: [r["loss"] for r in read_metrics(d) if "loss" in r and r["step"] > 4]
  assert losses(tmp_path / "full") == losses(tmp_path / "split")


def test_weight_decay_follows_titok_grouping(tmp_path):
  trainer = Trainer(tiny_config(), tmp_path)
  mask = decay_mask(trainer.state["params"])
  flat = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(mask)}
  decayed = sorted(k for k, v in flat.items() if v)
  assert decayed and all(("kernel" in k) for k in decayed)
  for name in ("ln_1", "bias", "latent_tokens", "mask_token", "patch_embed", "decoder_embed",
               "'embedding'", "positional_embedding"):
    assert not any(name in k for k in decayed), name
  assert any("in_proj" in k for k in decayed) and any("c_fc" in k for k in decayed)


def test_trained_model_loads_for_evaluation(tmp_path):
  Trainer(tiny_config(total_steps=4), tmp_path).train()
  model = load_trained_model(tmp_path, weights="params")
  images = np.random.default_rng(0).random((2, 64, 64, 3), np.float32)
  assert model.decode(model.encode(images)).shape == (2, 64, 64, 3)
  with pytest.raises(FileNotFoundError, match="config.json"):
    load_trained_model(tmp_path / "nothing")


def _train_cmd(workdir, *extra):
  return [sys.executable, str(ROOT / "train.py"), f"--workdir={workdir}",
          "--config.total_steps=40", "--config.eval_every=40", "--config.batch_size=8",
          "--config.num_eval_images=8", "--config.eval_batch_size=8", "--config.log_every=1",
          *extra]


SUBPROCESS_ENV = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}


def _wait_for(predicate, proc, seconds=240):
  deadline = time.time() + seconds
  while time.time() < deadline and proc.poll() is None and not predicate():
    time.sleep(0.2)
  assert proc.poll() is None, "training ended before it could be interrupted"


def _losses_by_step(workdir) -> dict:
  return {r["step"]: r["loss"] for r in read_metrics(workdir) if "loss" in r}  # last write wins


def test_sigterm_saves_and_the_resumed_run_matches_an_uninterrupted_one(tmp_path):
  reference = tmp_path / "reference"
  subprocess.run(_train_cmd(reference, "--config.checkpoint_every=100"), env=SUBPROCESS_ENV,
                 check=True, capture_output=True, timeout=300)
  workdir = tmp_path / "preempted"
  cmd = _train_cmd(workdir, "--config.checkpoint_every=100")  # no periodic save before 40
  proc = subprocess.Popen(cmd, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  _wait_for(lambda: (workdir / "metrics.jsonl").exists() and
            max(_losses_by_step(workdir), default=0) >= 5, proc)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 0  # a clean exit
  stopped = max(_losses_by_step(workdir))
  assert 5 <= stopped < 40
  assert (workdir / "checkpoints" / str(stopped)).is_dir()
  subprocess.run(cmd, env=SUBPROCESS_ENV, check=True, capture_output=True, timeout=300)
  assert _losses_by_step(workdir) == _losses_by_step(reference)  # every step, bit for bit


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
  """SIGKILL after a save: the same command continues from that save, step for step."""
  reference = tmp_path / "reference"
  subprocess.run(_train_cmd(reference, "--config.checkpoint_every=100"), env=SUBPROCESS_ENV,
                 check=True, capture_output=True, timeout=300)
  workdir = tmp_path / "killed"
  cmd = _train_cmd(workdir, "--config.checkpoint_every=10")
  proc = subprocess.Popen(cmd, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  checkpoints = workdir / "checkpoints"
  _wait_for(lambda: checkpoints.exists() and any(
      p.name.isdigit() and int(p.name) >= 10 for p in checkpoints.iterdir()), proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert max(_losses_by_step(workdir)) < 40
  subprocess.run(cmd, env=SUBPROCESS_ENV, check=True, capture_output=True, timeout=300)
  steps = [r["step"] for r in read_metrics(workdir) if "loss" in r]
  restart = next(i for i in range(1, len(steps)) if steps[i] <= steps[i - 1])
  assert steps[restart] - 1 in (10, 20, 30)  # resumed right after a saved step, not from 0
  assert _losses_by_step(workdir) == _losses_by_step(reference)
  assert json.loads((workdir / "config.json").read_text())["total_steps"] == 40


def test_eval_cli_writes_results_and_grid(tmp_path):
  Trainer(tiny_config(total_steps=2), tmp_path / "run").train()
  out = tmp_path / "eval"
  result = subprocess.run(
      [sys.executable, str(ROOT / "eval.py"), f"--workdir={tmp_path / 'run'}", f"--out={out}",
       "--num=8", "--batch_size=4"],
      env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}, capture_output=True,
      text=True, timeout=300, check=True)
  results = json.loads((out / "results.json").read_text())
  assert results["num_images"] == 8 and 5 < results["psnr"] < 40
  assert 0 < results["codebook_usage"] <= 1 and results["codebook_perplexity"] >= 1
  assert (out / "recon_grid.png").is_file() and '"psnr"' in result.stdout


def test_eval_cli_loads_a_released_checkpoint_file(tmp_path):
  from flax import nnx
  from safetensors.numpy import save_file
  from zoo import registry
  from zoo.convert.common import expected_torch_shapes
  from zoo.convert.seeded import seeded_state_dict
  entry = registry.get("titok_tiny_vq")
  model = nnx.eval_shape(lambda: registry.create("titok_tiny_vq"))
  save_file(seeded_state_dict(expected_torch_shapes(model, entry.table(model.config))),
            str(tmp_path / "model.safetensors"))
  out = tmp_path / "eval"
  subprocess.run(
      [sys.executable, str(ROOT / "eval.py"), "--model=titok_tiny_vq",
       f"--checkpoint={tmp_path / 'model.safetensors'}", f"--out={out}", "--num=4",
       "--batch_size=4"],
      env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}, capture_output=True,
      text=True, timeout=300, check=True)
  assert json.loads((out / "results.json").read_text())["num_images"] == 4


def test_default_training_raises_heldout_psnr_by_3db(tmp_path):
  """The README's `python train.py --workdir DIR`: tiny TiTok, built-in photos, 600 steps."""
  subprocess.run([sys.executable, str(ROOT / "train.py"), f"--workdir={tmp_path}"],
                 env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}, check=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
  evals = [r for r in read_metrics(tmp_path) if "eval/psnr" in r]
  assert evals[0]["step"] == 0 and evals[-1]["step"] == 600
  assert evals[-1]["eval/psnr"] - evals[0]["eval/psnr"] >= 3.0
