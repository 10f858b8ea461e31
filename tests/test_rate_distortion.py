"""Rate-distortion sweeps of flexible-length tokenizers: eval.py --num-tokens and the evaluator."""
import json
import os
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.data import make_eval_batches, make_image_dataset
from zoo.evals import psnr
from zoo.evals.rate_distortion import evaluate_rate_distortion, markdown_table
from zoo.evals.reconstruction import evaluate_reconstruction
from tests.compilations import count_compilations

ROOT = pathlib.Path(__file__).resolve().parents[1]


def batches():
  return make_image_dataset("builtin:photos", image_size=64, batch_size=4, train=False,
                            num_examples=6)


@pytest.fixture(scope="module")
def model():
  return zoo.create("one_d_piece_tiny", seed=2)


def test_each_row_is_the_prefix_decode(model, tmp_path):
  rows = evaluate_rate_distortion(model, batches, [1, 4, 32], out_dir=tmp_path,
                                  metrics=("psnr", "usage"))
  assert [row["num_tokens"] for row in rows] == [1, 4, 32]
  images = np.concatenate(make_eval_batches("builtin:photos", image_size=64, batch_size=4,
                                            num_images=6))
  ids = model.encode(images)
  for row in rows:
    k = row["num_tokens"]
    want = float(jnp.mean(psnr(images, model.decode(ids[:, :k]))))
    np.testing.assert_allclose(row["psnr"], want, rtol=1e-5)
    assert row["num_images"] == 6
  lines = (tmp_path / "rate_distortion.jsonl").read_text().splitlines()
  assert [json.loads(line)["psnr"] for line in lines] == [row["psnr"] for row in rows]
  assert (tmp_path / "rate_distortion.md").read_text() == markdown_table(rows)
  assert (tmp_path / "rate_distortion.png").stat().st_size > 1000
  assert (tmp_path / "tokens_0004" / "recon_grid.png").is_file()


def test_the_sweep_compiles_once(model, tmp_path):
  evaluate_reconstruction(model, batches(), out_dir=tmp_path / "warm", metrics=("psnr",),
                          num_tokens=2)
  with count_compilations() as compiles:
    evaluate_rate_distortion(model, batches, [1, 3, 8, 32], out_dir=tmp_path / "sweep",
                             metrics=("psnr",))
  assert compiles == []


def test_errors_name_the_problem(model, tmp_path):
  with pytest.raises(ValueError, match=r"num_tokens must be in \[1, 32\]"):
    evaluate_rate_distortion(model, batches, [1, 33], out_dir=tmp_path)
  with pytest.raises(ValueError, match="token_counts is empty"):
    evaluate_rate_distortion(model, batches, [], out_dir=tmp_path)

  class Fixed:  # a tokenizer without flexible decoding
    config = None

    def encode(self, images):
      return images

    def decode(self, tokens):
      return tokens

  with pytest.raises(ValueError, match="cannot decode a chosen number of tokens"):
    evaluate_reconstruction(Fixed(), batches(), out_dir=tmp_path, num_tokens=4)


def test_eval_cli_num_tokens(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(
      [sys.executable, str(ROOT / "eval.py"), "--model=one_d_piece_tiny", "--num=4",
       "--batch_size=4", "--metrics=psnr,ssim", "--num-tokens", "1,8,32",
       f"--out={tmp_path}"], env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = [json.loads(line) for line in (tmp_path / "rate_distortion.jsonl").read_text().splitlines()]
  assert [r["num_tokens"] for r in rows] == [1, 8, 32]
  assert all({"psnr", "ssim", "protocol"} <= set(r) for r in rows)
  assert "| tokens | psnr | ssim |" in proc.stdout
  assert (tmp_path / "rate_distortion.png").is_file()
