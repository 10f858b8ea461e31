"""The reconstruction evaluator and eval.py: metrics, rFID/IS plumbing, process sharding."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from zoo import registry
from zoo.data import make_image_dataset
from zoo.evals.reconstruction import EvalNets, evaluate_reconstruction

ROOT = pathlib.Path(__file__).resolve().parents[1]


class Identity(nnx.Module):
  """A 'tokenizer' that returns its input: every metric must say 'perfect'."""

  def __init__(self, shift: float = 0.0):
    self.shift = shift

  def encode(self, images):
    return images

  def decode(self, tokens):
    return tokens + self.shift


@pytest.fixture(scope="module")
def inception():
  return registry.create("inception_fid", seed=0)


def batches(num=12, batch_size=8):
  return make_image_dataset("builtin:photos", image_size=64, batch_size=batch_size, train=False,
                            num_examples=num)


def test_identity_scores_perfect_and_a_shift_does_not(inception, tmp_path):
  nets = EvalNets(inception=inception)
  # Four images, one padded batch over the devices: Inception at 299 px is slow on CPU.
  perfect = evaluate_reconstruction(Identity(), batches(4, 5), out_dir=tmp_path / "a",
                                    metrics=("rfid", "psnr"), nets=nets)
  assert perfect["num_images"] == 4 and perfect["fid_real_count"] == 4
  assert perfect["psnr"] == np.inf
  shifted = evaluate_reconstruction(Identity(0.1), batches(4, 5), out_dir=tmp_path / "b",
                                    metrics=("rfid", "psnr"), nets=nets)
  # Seeded weights give small features, so FIDs are small in absolute terms: compare them.
  assert shifted["rfid"] > 0 and abs(perfect["rfid"]) < 1e-3 * shifted["rfid"]
  assert 15 < shifted["psnr"] < 25
  assert json.loads((tmp_path / "b" / "results.json").read_text())["rfid"] == shifted["rfid"]
  assert (tmp_path / "b" / "recon_grid.png").is_file()


def test_inception_score_over_ten_splits(inception, tmp_path):
  result = evaluate_reconstruction(Identity(), batches(10, 10), out_dir=tmp_path,
                                   metrics=("is",), nets=EvalNets(inception=inception))
  assert result["num_images"] == 10
  for key in ("inception_score", "inception_score_titok"):
    assert np.isfinite(result[key]) and result[key] >= 1.0, key


def test_metrics_need_their_networks_and_known_names(tmp_path):
  with pytest.raises(ValueError, match="Inception"):
    evaluate_reconstruction(Identity(), batches(), out_dir=tmp_path, metrics=("rfid",))
  with pytest.raises(ValueError, match="LPIPS"):
    evaluate_reconstruction(Identity(), batches(), out_dir=tmp_path, metrics=("lpips",))
  with pytest.raises(ValueError, match="unknown metrics"):
    evaluate_reconstruction(Identity(), batches(), out_dir=tmp_path, metrics=("fid50k",))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_eval_cli_sharded_over_processes_matches_one_process(tmp_path):
  args = [sys.executable, str(ROOT / "eval.py"), "--model=titok_tiny_vq", "--num=10",
          "--batch_size=4", "--metrics=psnr,ssim,usage"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  port = free_port()
  procs = [subprocess.Popen(
      [*args, f"--out={tmp_path / 'multi.json'}", f"--coordinator_address=127.0.0.1:{port}",
       "--num_processes=2", f"--process_id={i}"], env=env, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  subprocess.run([*args, f"--out={tmp_path / 'single.json'}"], env=env, check=True,
                 capture_output=True, timeout=600)
  for proc in procs:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
  multi = json.loads((tmp_path / "multi.json").read_text())
  single = json.loads((tmp_path / "single.json").read_text())
  assert multi["num_images"] == single["num_images"] == 10
  assert multi["protocol"] == "titok"
  for key in ("psnr", "ssim", "codebook_usage", "codebook_perplexity"):
    np.testing.assert_allclose(multi[key], single[key], rtol=1e-6, err_msg=key)
