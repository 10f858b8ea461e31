"""The stage-2 discriminator and GAN losses give the official outputs.

Goldens come from tests/golden/make_discriminator_golden.py (the official PyTorch code on the
weights of zoo.convert.seeded, GroupNorm scales +1); here the same weights are rebuilt from the
saved key/shape tables and loaded through the converter.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.discriminators import NLayerDiscriminator, NLayerDiscriminatorConfig
from zoo.convert import nlayer_discriminator as convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict
from zoo.train import gan_losses as gl

GOLDEN = pathlib.Path(__file__).parent / "golden"
TABLES = json.loads((GOLDEN / "discriminator_golden_shapes.json").read_text())


@pytest.fixture(scope="module")
def golden():
  return np.load(GOLDEN / "nlayer_discriminator.npz")


def seeded_official_state(case):
  """The golden script's weights: seeded parameters (GroupNorm scales +1) and the blur buffers."""
  entry = TABLES[case]
  params = {k: tuple(v) for k, v in entry["state_dict"].items() if k not in entry["buffers"]}
  state = seeded_state_dict(params, seed=0)
  for k in state:
    parts = k.split(".")
    if parts[0] == "blocks" and parts[2:] == ["2", "weight"]:
      state[k] = state[k] + 1.0
  cfg = NLayerDiscriminatorConfig(**entry["config"])
  return cfg, {**state, **convert.fixed_buffers(cfg)}


def load_case(case):
  cfg, state = seeded_official_state(case)
  model = nnx.eval_shape(lambda: NLayerDiscriminator(cfg, rngs=nnx.Rngs(0)))
  convert.load_state_dict(model, state)
  return model


@pytest.mark.parametrize("case", sorted(TABLES))
def test_logits_match_official(case, golden):
  model = load_case(case)
  logits = np.asarray(model(jnp.asarray(golden[f"{case}_images"])))
  assert logits.shape == golden[f"{case}_logits"].shape
  # Errors are ~2e-6; GroupNorm eps 1e-6 instead of 1e-5 alone moves the logits by >1e-4.
  np.testing.assert_allclose(logits, golden[f"{case}_logits"], rtol=0, atol=2e-5)


@pytest.mark.parametrize("case", sorted(TABLES))
def test_converter_table_matches_official_state_dict(case):
  cfg = NLayerDiscriminatorConfig(**TABLES[case]["config"])
  model = nnx.eval_shape(lambda: NLayerDiscriminator(cfg, rngs=nnx.Rngs(0)))
  ours = expected_torch_shapes(model, convert.table(cfg))
  ours.update({k: v.shape for k, v in convert.fixed_buffers(cfg).items()})
  official = {k: tuple(v) for k, v in TABLES[case]["state_dict"].items()}
  assert ours == official


def test_default_config_is_the_official_default():
  assert TABLES["default"]["config"] == {}
  assert NLayerDiscriminatorConfig() == NLayerDiscriminatorConfig(**TABLES["default"]["config"])


def test_converter_rejects_a_wrong_blur_buffer():
  cfg, state = seeded_official_state("default")
  model = nnx.eval_shape(lambda: NLayerDiscriminator(cfg, rngs=nnx.Rngs(0)))
  state["blocks.1.1.kernel"] = np.full((1, 1, 4, 4), 1 / 16, np.float32)  # box, not (1,3,3,1)
  with pytest.raises(CheckpointMismatchError, match="blocks.1.1.kernel"):
    convert.load_state_dict(model, state)
  del state["blocks.1.1.kernel"]
  with pytest.raises(CheckpointMismatchError, match="missing blur buffer"):
    convert.load_state_dict(model, state)


def test_split_loss_module_state():
  _, state = seeded_official_state("default")
  full = {f"discriminator.{k}": v for k, v in state.items()}
  full.update({"ema_real_logits_mean": np.zeros(1), "ema_fake_logits_mean": np.zeros(1),
               "perceptual_loss.convnext.features.0.0.weight": np.zeros(1)})
  disc, lecam = convert.split_loss_module_state(full)
  assert sorted(disc) == sorted(state) and sorted(lecam) == sorted(convert.LECAM_BUFFERS)


def test_pure_losses_match_official(golden):
  real, fake = (jnp.asarray(golden[f"loss_{k}_logits"][0]) for k in ("real", "fake"))
  np.testing.assert_allclose(gl.hinge_d_loss(real, fake), golden["loss_hinge"], atol=1e-6)
  np.testing.assert_allclose(gl.generator_loss(fake), golden["loss_generator"], atol=1e-6)
  ema = gl.LeCamEMA(jnp.float32(0.3), jnp.float32(-0.2))
  loss, new = gl.lecam_loss(real, fake, ema, decay=0.999)
  np.testing.assert_allclose(loss, golden["loss_lecam_preset"], atol=1e-6)
  np.testing.assert_allclose(np.asarray(new), golden["loss_lecam_preset_new_ema"], atol=1e-6)


def test_loss_schedule_matches_official_module(golden):
  """4 steps of ReconstructionLoss_Stage2 (discriminator_start=2) from a zero LeCam EMA."""
  cfg = gl.GanLossConfig(discriminator_start=2)
  d_step = jax.jit(lambda r, f, ema, step: gl.discriminator_loss(r, f, ema, step, cfg))
  g_step = jax.jit(lambda f, step: gl.generator_gan_loss(f, step, cfg))
  ema = gl.init_lecam_ema()
  got = {k: [] for k in ("d_loss", "lecam", "ema_real", "ema_fake", "g_weighted", "g_gan")}
  for step in range(len(golden["loss_seq_d_loss"])):
    real = jnp.asarray(golden["loss_real_logits"][step])
    fake = jnp.asarray(golden["loss_fake_logits"][step])
    weighted, g = g_step(fake, step)
    d, ema, m = d_step(real, fake, ema, step)
    for k, v in (("d_loss", d), ("lecam", m["lecam_loss"]), ("ema_real", ema.real),
                 ("ema_fake", ema.fake), ("g_weighted", weighted), ("g_gan", g["gan_loss"])):
      got[k].append(float(v))
  for k, v in got.items():
    np.testing.assert_allclose(v, golden[f"loss_seq_{k}"], rtol=0, atol=1e-6, err_msg=k)
  assert [bool(gl.should_train_discriminator(s, cfg)) for s in range(4)] == [0, 0, 1, 1]


def test_discriminator_gradients_are_finite_and_nonzero(golden):
  cfg = NLayerDiscriminatorConfig(**TABLES["small_k5"]["config"])
  model = NLayerDiscriminator(cfg, rngs=nnx.Rngs(0))  # torch-style random init
  images = jnp.asarray(golden["default_images"][:, :40, :40])
  real, fake = images[:2], images[2:]
  loss_cfg = gl.GanLossConfig(discriminator_start=0)

  def loss_fn(m):
    loss, _, _ = gl.discriminator_loss(m(real), m(fake), gl.init_lecam_ema(), 0, loss_cfg)
    return loss

  grads = nnx.grad(loss_fn)(model)
  leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
  assert len(leaves) == len(convert.table(cfg))
  for g in leaves:
    assert np.all(np.isfinite(g))
  assert all(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_torch_style_init_bounds():
  model = NLayerDiscriminator(NLayerDiscriminatorConfig(hidden_channels=32, num_stages=1),
                              rngs=nnx.Rngs(0))
  bound = 1 / np.sqrt(3 * 5 * 5)
  for p in (model.conv_in.kernel, model.conv_in.bias):
    assert float(jnp.abs(p[...]).max()) <= bound
    assert float(jnp.abs(p[...]).max()) > 0.9 * bound


def test_bad_input_shape_is_named():
  model = NLayerDiscriminator(NLayerDiscriminatorConfig(hidden_channels=32, num_stages=1),
                              rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="NHWC"):
    model(jnp.zeros((1, 3, 32, 32)))
