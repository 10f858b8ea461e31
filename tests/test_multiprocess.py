"""Real multi-process training: 2 processes x 2 CPU devices (jax.distributed on localhost)
against 1 process x 4 devices, same global batch and seed."""
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

from zoo.train.metrics_writer import read_metrics

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 20
FLAGS = [f"--config.total_steps={STEPS}", "--config.batch_size=8", "--config.log_every=1",
         "--config.eval_every=100", "--config.checkpoint_every=100",
         "--config.num_eval_images=10", "--config.eval_batch_size=8"]  # a ragged last batch


def env(devices: int) -> dict:
  return {**os.environ, "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def losses(workdir) -> list[float]:
  return [r["loss"] for r in read_metrics(workdir) if "loss" in r]


def evals(workdir) -> list[dict]:
  return [r for r in read_metrics(workdir) if "eval/psnr" in r]


def test_two_processes_match_one_process(tmp_path):
  port = free_port()
  procs = [subprocess.Popen(
      [sys.executable, str(ROOT / "train.py"), f"--workdir={tmp_path / 'multi'}",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}",
       *FLAGS], env=env(2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  single = subprocess.run([sys.executable, str(ROOT / "train.py"),
                           f"--workdir={tmp_path / 'single'}", *FLAGS], env=env(4),
                          capture_output=True, text=True, timeout=600)
  for proc in procs:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
  assert single.returncode == 0, single.stderr[-2000:]
  multi, one = losses(tmp_path / "multi"), losses(tmp_path / "single")
  assert len(multi) == len(one) == STEPS  # metrics written once, by process 0
  np.testing.assert_allclose(multi, one, rtol=1e-5)
  # Evaluation is split across the processes' devices and gathered: same metrics, same steps.
  multi_evals, one_evals = evals(tmp_path / "multi"), evals(tmp_path / "single")
  assert [r["step"] for r in multi_evals] == [r["step"] for r in one_evals] == [0, STEPS]
  for a, b in zip(multi_evals, one_evals):
    for key in ("eval/psnr", "eval/ssim", "eval/ema_psnr"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
