"""LARP on the one trainer: the prior's loss and learning-rate multiplier, the video
discriminator on its update interval, resuming, and eval.py on the run (metrics, rFVD, MP4)."""
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import zoo
from zoo.configs import larp as larp_configs
from zoo.data import read_video, make_video_eval_batches
from zoo.evals.video_reconstruction import evaluate_video
from zoo.train.optimizer import make_optimizer
from zoo.train.trainer import Trainer
from zoo.train.train_state import load_trained_model
from zoo.train.video_gan import ns_smooth_discriminator_loss

pytestmark = pytest.mark.training  # long training checks: scheduled first

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(**overrides):
  c = larp_configs.get_config("tiny")
  c.update(total_steps=6, log_every=1, eval_every=6, checkpoint_every=3, batch_size=8,
           num_eval_clips=8, eval_batch_size=8)
  c.gan.update(discriminator_start=2, update_every=2)
  c.update(overrides)
  return c


def read_metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def larp_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("larp")
  Trainer(tiny_config(), workdir).train()
  return workdir


def test_trains_with_prior_and_video_gan(larp_run):
  train = [r for r in read_metrics(larp_run) if "loss" in r]
  assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
  assert {"pixel_l1", "latent_ce", "prior_top1", "quantizer_loss", "codebook_usage"} <= set(
      train[0])
  assert "gan_loss" not in train[1] and "gan_loss" in train[2]
  # The discriminator updates at steps 2 and 4 (update_every 2) and not at 3 and 5.
  assert "discriminator_loss" in train[2] and "discriminator_loss" not in train[3]
  assert "discriminator_loss" in train[4]
  assert all(np.isfinite(r["loss"]) for r in train)
  assert (larp_run / "recon" / "step_0000006.mp4").is_file()
  frames, _ = read_video(larp_run / "recon" / "step_0000006.mp4")
  assert frames.shape[1:3] == (32, 64)  # original | reconstruction
  assert (larp_run / "recon" / "step_0000006_frames.png").is_file()


def test_resumes_from_its_checkpoint(larp_run, tmp_path):
  # A run stopped at step 3 and resumed gives the same step-6 state as one that ran through.
  workdir = tmp_path / "resumed"
  Trainer(tiny_config(), workdir).train(until=3)
  Trainer(tiny_config(), workdir).train()
  a = load_trained_model(larp_run, weights="params")
  b = load_trained_model(workdir, weights="params")
  for x, y in zip(jax.tree.leaves(nnx.state(a, nnx.Param)), jax.tree.leaves(nnx.state(b, nnx.Param))):
    np.testing.assert_allclose(x, y, atol=1e-6)


def test_prior_learning_rate_multiplier():
  c = tiny_config()
  c.lr_multipliers = {"prior_model": 50.0}
  c.warmup_steps = 0
  params = {"prior_model": {"w": jnp.ones(3)}, "encoder": {"w": jnp.ones(3)}}
  opt = make_optimizer(c)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = opt.update(grads, opt.init(params), params)
  ratio = updates["prior_model"]["w"] / updates["encoder"]["w"]
  np.testing.assert_allclose(ratio, 50.0, rtol=1e-5)


def test_prior_loss_reaches_the_encoder_not_the_codebook():
  model = zoo.create("larp_tiny")
  video = jnp.asarray(np.random.default_rng(0).random((2, 8, 32, 32, 3)), jnp.float32)

  def ce(m):
    z = m.encode_latents(video)
    codes, aux = m.quantize(z, sample_key=jax.random.key(0))
    return m.prior_loss(codes, aux["ids"], progress=0.5, train=False,
                        rngs=nnx.Rngs(sample=1))[0]

  grads = nnx.grad(ce)(model)
  assert float(optax.tree.norm(grads.encoder)) > 0
  assert float(optax.tree.norm(grads.prior_model)) > 0
  np.testing.assert_array_equal(grads.bottleneck.regularizer.embedding[...], 0.0)


def test_scheduled_sampling_ratio_and_rounds():
  model = zoo.create("larp_tiny", prior_rounds=1)
  ids = jnp.asarray(np.random.default_rng(1).integers(0, 256, (2, 32)), jnp.int32)
  codes = jnp.take(model.codebook(), ids, axis=0)
  one, _ = model.prior_loss(codes, ids, progress=0.0, train=False, rngs=nnx.Rngs(sample=0))
  # With one round the loss is the teacher-forced cross-entropy of prior_logits.
  logits = model.prior_logits(ids)
  picked = jnp.take_along_axis(logits, ids[:, 1:, None], axis=-1)[..., 0]
  np.testing.assert_allclose(one, jnp.mean(jax.nn.logsumexp(logits, -1) - picked), rtol=1e-5)


def test_label_noise_of_the_discriminator_loss():
  real, fake = jnp.full((4096, 1), 3.0), jnp.full((4096, 1), -3.0)
  smooth = ns_smooth_discriminator_loss(real, fake, jax.random.key(0))
  exact = 2 * float(jnp.mean(jax.nn.softplus(-3.0 * jnp.ones(1))))
  assert float(smooth) > exact  # soft targets (~0.9 and ~0.1) cost more than hard ones


def test_video_eval_with_rfvd(tmp_path):
  # A 12-frame tiny LARP (I3D needs >= 9 frames) and a seeded I3D: every metric and file.
  from zoo.convert.seeded import batchnorm_state_dict
  shapes = json.loads((ROOT / "tests/golden/i3d_golden_shapes.json").read_text())
  from safetensors.numpy import save_file
  save_file(batchnorm_state_dict(shapes), str(tmp_path / "i3d.safetensors"))
  i3d = zoo.from_pretrained("i3d_kinetics400", checkpoint=str(tmp_path / "i3d.safetensors"))
  model = zoo.create("larp_tiny", frame_num=12)
  clips = make_video_eval_batches("builtin:clips", num_frames=12, size=32, batch_size=3,
                                  num_clips=6)
  results = evaluate_video(model, clips, out_dir=tmp_path / "eval",
                           metrics=("psnr", "ssim", "rfvd", "usage"), i3d=i3d,
                           results_path=tmp_path / "eval" / "results.json")
  assert results["num_clips"] == 6 and results["rfvd"] > 0 and 0 < results["codebook_usage"]
  assert json.loads((tmp_path / "eval" / "results.json").read_text())["psnr"] == results["psnr"]
  for name in ("side_by_side.mp4", "side_by_side.gif", "frames.png"):
    assert (tmp_path / "eval" / name).is_file()
  with pytest.raises(ValueError, match="rfvd metric needs the I3D"):
    evaluate_video(model, clips, out_dir=tmp_path, metrics=("rfvd",))


def test_eval_py_on_the_run(larp_run, tmp_path):
  out = tmp_path / "eval"
  subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={larp_run}", "--num=4",
                  "--batch-size=4", f"--out={out}"], check=True, cwd=ROOT, capture_output=True)
  results = json.loads((out / "results.json").read_text())
  assert results["num_clips"] == 4 and {"psnr", "ssim", "codebook_usage"} <= set(results)
  assert (out / "side_by_side.gif").is_file()
