"""TiTok stage 2 and single stage: frozen encoder, warm start, perceptual + GAN losses."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from zoo.configs import titok
from zoo.train.frozen_nets import create_teacher_model
from zoo.train.metrics_writer import read_metrics
from zoo.train.optimizer import make_optimizer, stop_frozen_gradients
from zoo.train.trainer import Trainer
from zoo.train.train_state import load_trained_model

pytestmark = pytest.mark.training  # long training checks: scheduled first

FROZEN = ("encoder", "latent_tokens", "quantize")
SMALL = dict(batch_size=8, warmup_steps=2, log_every=1, checkpoint_every=100,
             num_eval_images=8, eval_batch_size=8)


def subtree(state, key):
  return jax.tree.map(np.asarray, state[key])


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def trees_differ(a, b) -> bool:
  return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def stage1_workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("stage1")
  config = titok.get_config("tiny_stage1")
  config.update(dict(SMALL, total_steps=3, eval_every=3))
  Trainer(config, workdir).train()
  return workdir


def stage2_config(stage1_workdir, **overrides):
  config = titok.get_config("tiny_stage2")
  config.update(dict(SMALL, init_from=str(stage1_workdir)))
  config.update(overrides)
  return config


def test_optimizer_leaves_frozen_modules_without_updates_or_state():
  params = {"encoder": {"w": jnp.ones((4, 4))}, "decoder": {"w": jnp.ones((4, 4))}}
  config = titok.get_config("tiny")
  optimizer = make_optimizer(config, frozen=("encoder",))
  opt_state = optimizer.init(params)
  frozen_state = [x for x in jax.tree.leaves(opt_state) if getattr(x, "shape", ()) == (4, 4)]
  assert len(frozen_state) == 2  # Adam's two moments, for the decoder only
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = optimizer.update(grads, opt_state, params)
  np.testing.assert_array_equal(updates["encoder"]["w"], 0.0)
  assert np.abs(np.asarray(updates["decoder"]["w"])).sum() == 0.0  # step 0: warmup lr is 0
  grads = jax.grad(lambda p: sum(jnp.sum(x ** 2) for x in jax.tree.leaves(
      stop_frozen_gradients(p, ("encoder",)))))(params)
  np.testing.assert_array_equal(grads["encoder"]["w"], 0.0)
  np.testing.assert_array_equal(grads["decoder"]["w"], 2.0)


def test_stage2_starts_from_stage1_and_the_teacher_and_keeps_them_frozen(stage1_workdir, tmp_path):
  config = stage2_config(stage1_workdir, total_steps=6, eval_every=6)
  config.gan.discriminator_start = 3
  trainer = Trainer(config, tmp_path)
  start = {k: subtree(trainer.state["params"], k) for k in (*FROZEN, "decoder", "pixel_decoder")}
  stage1 = nnx.state(load_trained_model(stage1_workdir, weights="ema"), nnx.Param)
  for key in (*FROZEN, "decoder"):  # every stage-1 module, from its EMA weights
    assert_trees_equal(start[key], jax.tree.map(np.asarray, stage1[key]))
  teacher = create_teacher_model(config)
  assert_trees_equal(start["pixel_decoder"], jax.tree.map(
      np.asarray, nnx.state(teacher.decoder, nnx.Param)))
  assert_trees_equal(subtree(trainer.state["params"], "pixel_quantize"), jax.tree.map(
      np.asarray, nnx.state(teacher.quantize, nnx.Param)))

  trainer.train(until=3)  # the steps before the GAN starts
  disc_before = subtree(trainer.state, "disc_params")
  trainer = Trainer(config, tmp_path)
  trainer.train()
  end = trainer.state["params"]
  for key in FROZEN:
    assert_trees_equal(subtree(end, key), start[key])
  assert trees_differ(subtree(end, "decoder"), start["decoder"])
  assert trees_differ(subtree(end, "pixel_decoder"), start["pixel_decoder"])
  assert trees_differ(subtree(trainer.state, "disc_params"), disc_before)

  rows = [r for r in read_metrics(tmp_path) if "loss" in r]
  assert [r["step"] for r in rows] == list(range(1, 7))
  for r in rows:  # the GAN (generator term and discriminator step) from step 3 on
    gan_on = r["step"] > 3
    assert ("discriminator_loss" in r) == gan_on and ("weighted_gan_loss" in r) == gan_on
    assert r["convnext_mse"] > 0 and np.isfinite(r["loss"])
  r = rows[-1]
  expected = (r["pixel_l2"] + 0.1 * r["perceptual"] + r["weighted_gan_loss"])
  np.testing.assert_allclose(r["loss"], expected, rtol=1e-5)  # quantizer weight 0


def test_stage2_resume_with_the_discriminator_matches_an_uninterrupted_run(stage1_workdir,
                                                                           tmp_path):
  def run(workdir, until=None):
    config = stage2_config(stage1_workdir, total_steps=5, eval_every=100)
    config.gan.discriminator_start = 1
    Trainer(config, workdir).train(until=until)

  run(tmp_path / "full")
  run(tmp_path / "split", until=3)  # saves at step 3 (the last step it runs)
  run(tmp_path / "split")
  keys = ("loss", "discriminator_loss", "lecam_loss", "logits_real")
  full = [[r.get(k) for k in keys] for r in read_metrics(tmp_path / "full") if "loss" in r]
  split = [[r.get(k) for k in keys] for r in read_metrics(tmp_path / "split") if "loss" in r]
  assert len(full) == 5 and all(None not in row for row in full[1:])
  assert split == full  # bit for bit, discriminator and LeCam EMA included


def test_tiny_stage2_learns(stage1_workdir, tmp_path):
  config = stage2_config(stage1_workdir, total_steps=30, eval_every=30, learning_rate=3e-3)
  config.gan.discriminator_start = 10
  Trainer(config, tmp_path).train()
  evals = [r for r in read_metrics(tmp_path) if "eval/psnr" in r]
  assert evals[-1]["eval/psnr"] > evals[0]["eval/psnr"] + 2.0


def test_tiny_single_stage_runs_every_loss(tmp_path):
  config = titok.get_config("tiny_single_stage")
  config.update(dict(SMALL, total_steps=2, eval_every=100))
  config.gan.discriminator_start = 1
  Trainer(config, tmp_path).train()
  last = [r for r in read_metrics(tmp_path) if "loss" in r][-1]
  for key in ("lpips", "convnext_mse", "discriminator_loss", "quantizer_loss"):
    assert np.isfinite(last[key]), key
  perceptual = (1.0 * last["lpips"] + 0.1 * last["convnext_mse"]) / 1.1
  np.testing.assert_allclose(last["perceptual"], perceptual, rtol=1e-5)


def test_recipes_carry_the_published_hyper_parameters():
  c = titok.get_config("titok_s128_stage2")
  assert c.model == "titok_s128" and c.frozen == FROZEN and c.pixel_decoder_from_teacher
  assert (c.loss.pixel_l2, c.loss.quantizer, c.loss.perceptual, c.loss.perceptual_mode) == (
      1.0, 0.0, 0.1, "convnext_s")
  assert (c.gan.discriminator_start, c.gan.discriminator_weight,
          c.gan.lecam_regularization_weight, c.gan.learning_rate) == (20_000, 0.01, 0.001, 1e-4)
  assert (c.total_steps, c.warmup_steps, c.beta2, c.batch_size) == (500_000, 5_000, 0.999, 256)
  assert c.model_overrides.commitment_cost == 0.0 and c.model_overrides.finetune_decoder
  c = titok.get_config("titok_bl64_vq8k")
  assert c.recipe == "single_stage" and c.codebook_reanchor and not c.frozen
  assert (c.loss.perceptual, c.loss.perceptual_mode) == (1.1, "lpips-convnext_s-1.0-0.1")
  assert (c.gan.discriminator_start, c.gan.discriminator_weight) == (200_000, 0.1)
  assert not titok.get_config("titok_bl64_vae_c16").codebook_reanchor
  with pytest.raises(ValueError, match="legacy"):
    titok.get_config("titok_bl64_vq8k_stage2")
  with pytest.raises(ValueError, match="unknown config"):
    titok.get_config("titok_s128_stage3")


def test_warm_start_rejects_a_run_that_does_not_fit(stage1_workdir, tmp_path):
  config = stage2_config(stage1_workdir)
  config.model = "titok_tiny_vq"  # another architecture: the stage-1 weights do not fit
  config.model_overrides = ml_collections.ConfigDict(dict(remat=False))
  config.pixel_decoder_from_teacher = False
  with pytest.raises(ValueError, match="does not fit"):
    Trainer(config, tmp_path)
