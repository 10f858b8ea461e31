"""OmniTokenizer on the one trainer: images and clips in one stream, multi-resolution
batches, the EMA codebook carried as state, resuming, the VAE's KL, and evaluation of both
modalities (eval.py on a run)."""
import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from zoo.configs import omnitokenizer as omni_configs
from zoo.evals.reconstruction import evaluate_reconstruction
from zoo.train import joint
from zoo.train.trainer import Trainer
from zoo.train.train_state import load_trained_model

pytestmark = pytest.mark.training  # long training checks: scheduled first

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(name="tiny", **overrides):
  c = omni_configs.get_config(name)
  c.update(total_steps=6, log_every=1, eval_every=6, checkpoint_every=3, batch_size=8,
           num_eval_clips=8, num_eval_images=8, eval_batch_size=8, frame_num=5)
  # One resolution: every scale is another compiled step (the stream test covers scales).
  c.update(overrides)
  return c


def read_metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def omni_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("omni")
  Trainer(tiny_config(), workdir).train()
  return workdir


class _Counter:
  """A checkpointable stand-in stream of batches numbered 0, 1, 2, ..."""

  def __init__(self, key, shape):
    self.key, self.shape, self.i = key, shape, 0

  def __next__(self):
    self.i += 1
    return {self.key: np.full(self.shape, self.i / 100, np.float32)}

  def get_state(self):
    return {"i": self.i}

  def set_state(self, state):
    self.i = state["i"]


def _stream(**kwargs):
  return joint.MixedStream(_Counter("image", (2, 32, 32, 3)), _Counter("video", (2, 5, 32, 32, 3)),
                           **kwargs)


def test_stream_alternates_resizes_and_resumes():
  stream = _stream(sample_ratio=(1, 1), force_alternation=True, sizes=(16, 32), seed=0)
  batches = [next(stream)["video"] for _ in range(8)]
  assert [b.ndim for b in batches] == [4, 5] * 4
  assert {b.shape[-2] for b in batches} == {16, 32}
  state = stream.get_state()
  after = [next(stream)["video"] for _ in range(4)]
  resumed = _stream(sample_ratio=(1, 1), force_alternation=True, sizes=(16, 32), seed=5)
  resumed.set_state(state)
  for a, b in zip(after, [next(resumed)["video"] for _ in range(4)]):
    np.testing.assert_array_equal(a, b)
  images_only = _stream(sample_ratio=(1, 0), force_alternation=False, sizes=(32,), seed=0)
  assert all(next(images_only)["video"].ndim == 4 for _ in range(6))
  with pytest.raises(ValueError, match="sample_ratio"):
    _stream(sample_ratio=(0, 0), force_alternation=False, sizes=(32,), seed=0)
  assert joint.scaled_size(256, 0.75, 64) == 192 and joint.scaled_size(32, 0.5, 16) == 16
  with pytest.raises(ValueError, match="less than one"):
    joint.scaled_size(32, 0.25, 16)


def test_trains_on_images_and_clips(omni_run):
  train = [r for r in read_metrics(omni_run) if "loss" in r]
  assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
  assert {"pixel_l1", "quantizer_loss", "commitment_loss", "codebook_usage"} <= set(train[0])
  assert all(np.isfinite(r["loss"]) for r in train)
  final = read_metrics(omni_run)[-1]
  assert {"eval/psnr", "eval/ssim", "eval/image_psnr", "eval/image_ssim"} <= set(final)
  assert (omni_run / "recon" / "step_0000006.mp4").is_file()
  # The EMA codebook is training state: initialised from the first batch, then moved.
  model = load_trained_model(omni_run, weights="params")
  assert float(model.codebook.inited[...]) == 1.0 and int(model.codebook.calls[...]) == 6
  assert float(model.codebook.N[...].sum()) > 0


def test_resumes_from_its_checkpoint(omni_run, tmp_path):
  workdir = tmp_path / "resumed"
  Trainer(tiny_config(), workdir).train(until=3)
  Trainer(tiny_config(), workdir).train()
  a = load_trained_model(omni_run, weights="params")
  b = load_trained_model(workdir, weights="params")
  for x, y in zip(jax.tree.leaves(nnx.state(a, (nnx.Param, nnx.BatchStat))),
                  jax.tree.leaves(nnx.state(b, (nnx.Param, nnx.BatchStat)))):
    np.testing.assert_allclose(x, y, atol=1e-6)


def test_vae_trains_with_its_kl(tmp_path):
  Trainer(tiny_config("tiny_vae", total_steps=2, checkpoint_every=2, eval_every=2,
                      sample_ratio=(0.0, 1.0), force_alternation=False), tmp_path).train()
  train = [r for r in read_metrics(tmp_path) if "loss" in r]
  assert all("kl" in r and r["kl"] > 0 for r in train)
  assert "quantizer_loss" not in train[0]


def test_image_evaluation_of_the_run(omni_run, tmp_path):
  from zoo.data import make_eval_batches
  model = load_trained_model(omni_run)
  batches = ({"image": b} for b in make_eval_batches("builtin:photos", image_size=32,
                                                      batch_size=4, num_images=4))
  results = evaluate_reconstruction(model, batches, out_dir=tmp_path,
                                    metrics=("psnr", "ssim", "usage"))
  assert results["num_images"] == 4 and 0 < results["codebook_usage"] <= 1
  assert (tmp_path / "recon_grid.png").is_file()


def test_eval_py_on_the_run_as_video(omni_run, tmp_path):
  out = tmp_path / "eval"
  subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={omni_run}", "--num=4",
                  "--batch-size=4", "--frames=5", f"--out={out}", "--data=builtin:clips"],
                 check=True, cwd=ROOT, capture_output=True)
  results = json.loads((out / "results.json").read_text())
  assert results["num_clips"] == 4 and results["num_frames"] == 5
  assert {"psnr", "ssim", "codebook_usage"} <= set(results)
  assert (out / "side_by_side.mp4").is_file() and (out / "frames.png").is_file()
