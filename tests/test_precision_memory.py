"""bf16 compute with float32 master weights, gradient accumulation, rematerialisation."""
import jax
import jax.numpy as jnp
import numpy as np

from zoo.train.metrics_writer import read_metrics
from zoo.train.trainer import Trainer
from zoo.train.train_state import create_model
from tests.test_train import tiny_config


def train(tmp_path, name, **overrides):
  config = tiny_config(total_steps=3, eval_every=100, checkpoint_every=100)
  for key, value in overrides.items():
    config[key] = value
  trainer = Trainer(config, tmp_path / name)
  trainer.train()
  return trainer.state, [r["loss"] for r in read_metrics(tmp_path / name) if "loss" in r]


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
  full, full_losses = train(tmp_path, "full")
  accumulated, accumulated_losses = train(tmp_path, "accum", grad_accum_steps=4)
  np.testing.assert_allclose(accumulated_losses, full_losses, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(full["params"]), jax.tree.leaves(accumulated["params"])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_remat_gives_the_same_training(tmp_path):
  _, plain = train(tmp_path, "plain")
  config = tiny_config()
  config.model_overrides.remat = True
  trainer = Trainer(config.copy_and_resolve_references(), tmp_path / "remat")
  trainer.config.total_steps = 3
  trainer.train()
  remat = [r["loss"] for r in read_metrics(tmp_path / "remat") if "loss" in r]
  np.testing.assert_allclose(remat, plain, rtol=1e-5)


def test_bfloat16_compute_keeps_float32_weights(tmp_path):
  config = tiny_config(dtype="bfloat16")
  model = create_model(config)
  out = model(jnp.ones((2, 64, 64, 3)) * 0.5, train=False)
  assert out["recon"].dtype == jnp.bfloat16
  state, losses = train(tmp_path, "bf16", dtype="bfloat16")
  assert {leaf.dtype for leaf in jax.tree.leaves(state["params"])} == {jnp.dtype("float32")}
  assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_remat_is_in_the_program():
  from flax import nnx
  images = jnp.ones((1, 64, 64, 3)) * 0.5

  def grad_jaxpr(remat):
    model = create_model(tiny_config(model_overrides={"remat": remat}))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    loss = lambda p: jnp.mean(nnx.merge(graphdef, p, rest)(images, train=False)["recon"])
    return str(jax.make_jaxpr(jax.grad(loss))(params))

  assert "remat" in grad_jaxpr(True) and "remat" not in grad_jaxpr(False)
