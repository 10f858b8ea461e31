"""GPSToken on the one trainer: initialisation in the data pipeline or in the step, taming's
adaptive GAN weight, the FID perceptual loss, and a few real steps of the tiny recipe."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.image.gpstoken import InitialGaussians
from models.image.gpstoken_init import initial_gaussians_for_image
from zoo.configs import gpstoken as gpstoken_configs
from zoo.data import make_image_dataset
from zoo.train.adaptive_gan import adaptive_gan_grads
from zoo.train.perceptual_loss import fid_perceptual_features, parse_mode

pytestmark = pytest.mark.training  # long training checks: scheduled first


@pytest.fixture(scope="module")
def tiny():
  return zoo.create("gpstoken_tiny")


def test_pipeline_precomputes_the_initialisation():
  cfg = zoo.registry.get("gpstoken_tiny").config
  ds = make_image_dataset("builtin:photos", image_size=cfg.image_size, batch_size=2, train=True,
                          extra_inputs=InitialGaussians(cfg))
  batch = next(iter(ds))
  assert batch["gaussians"].shape == (2, cfg.num_gaussians, 5)
  assert batch["rois"].shape == (2, cfg.num_gaussians, 4)
  for image, g, r in zip(batch["image"], batch["gaussians"], batch["rois"]):
    want_g, want_r = initial_gaussians_for_image(image, cfg.num_gaussians, tile=cfg.tile_size)
    np.testing.assert_array_equal(g, want_g)
    np.testing.assert_array_equal(r, want_r)


def test_forward_computes_the_initialisation_when_not_given(tiny):
  images = next(iter(make_image_dataset("builtin:photos", image_size=64, batch_size=2,
                                        train=False)))["image"]
  inputs = InitialGaussians(tiny.config)
  g = np.stack([inputs(im)["gaussians"] for im in images])
  r = np.stack([inputs(im)["rois"] for im in images])
  given = nnx.jit(lambda m, x, g, r: m(x, gaussians=g, rois=r))(tiny, images, g, r)
  eager = tiny(images)
  np.testing.assert_allclose(eager["recon"], given["recon"], atol=1e-5)
  np.testing.assert_allclose(eager["tokens"], tiny.encode(images, g, r), atol=1e-5)
  np.testing.assert_allclose(tiny.encode(images), tiny.encode(images, g, r), atol=1e-6)
  with pytest.raises(ValueError, match="under jit, pass gaussians= and rois="):
    nnx.jit(lambda m, x: m(x))(tiny, images)


def test_adaptive_gan_grads_match_autodiff_of_the_detached_weight():
  params = {"body": jnp.array([0.3, -1.2, 2.0]), "last": jnp.array([[0.5, -0.1], [1.5, 0.7]])}

  def parts(p):
    h = jnp.tanh(p["body"][:2])
    out = p["last"] @ h
    return (jnp.sum(out ** 2) + jnp.sum(p["body"] ** 2), -jnp.sum(jnp.sin(out))), None

  loss, w, grads, _ = adaptive_gan_grads(parts, params, last_layer="last",
                                         discriminator_weight=0.3, factor=1.0)
  nll_g = jax.grad(lambda p: parts(p)[0][0])(params)["last"]
  gan_g = jax.grad(lambda p: parts(p)[0][1])(params)["last"]
  want_w = 0.3 * jnp.linalg.norm(nll_g) / (jnp.linalg.norm(gan_g) + 1e-4)
  np.testing.assert_allclose(w, want_w, rtol=1e-6)
  want = jax.grad(lambda p: parts(p)[0][0] + want_w * parts(p)[0][1])(params)
  for k in params:
    np.testing.assert_allclose(grads[k], want[k], rtol=1e-5, atol=1e-6)
  (nll, gan), _ = parts(params)
  np.testing.assert_allclose(loss, nll + want_w * gan, rtol=1e-6)
  with pytest.raises(ValueError, match="no parameter 'decoder.conv_out'"):
    adaptive_gan_grads(parts, params, last_layer="decoder.conv_out", discriminator_weight=1.0,
                       factor=1.0)


def test_fid_perceptual_scales_inputs_as_255_x_plus_1():
  assert parse_mode("lpips+fid") == {"lpips": 1.0, "fid": 1.0}
  assert parse_mode("fid") == {"fid": 1.0}
  with pytest.raises(ValueError, match="plain modes"):
    parse_mode("lpips+vgg")
  inception = zoo.create("inception_fid")
  x = np.random.default_rng(0).uniform(0.0, 0.5, (2, 32, 32, 3)).astype(np.float32)
  # 255 (x_pm1 + 1) = 510 x: the network sees 2x as a [0, 1] image would be seen.
  want = inception.features(2.0 * x)["pool"]
  np.testing.assert_allclose(fid_perceptual_features(inception, jnp.asarray(x)), want,
                             rtol=1e-4, atol=1e-4)


def test_recipes():
  c = gpstoken_configs.get_config("gpstoken_m128")
  assert (c.learning_rate, c.beta1, c.beta2, c.weight_decay) == (5e-5, 0.5, 0.9, 0.0)
  assert c.learning_rate == c.end_learning_rate and c.warmup_steps == 0
  assert (c.loss.pixel_l2, c.loss.perceptual, c.loss.perceptual_mode) == (4.0, 2.0, "lpips+fid")
  assert (c.gan.discriminator_start, c.gan.discriminator_weight) == (600_000, 0.3)
  assert c.gan.adaptive_weight_layer == "decoder.conv_out.kernel"
  with pytest.raises(ValueError, match="unknown GPSToken config"):
    gpstoken_configs.get_config("gpstoken_xl")


def test_tiny_recipe_trains_with_the_adaptive_gan(tmp_path):
  from zoo.train.trainer import Trainer
  c = gpstoken_configs.get_config("tiny")
  c.update(total_steps=4, log_every=2, eval_every=4, checkpoint_every=4, num_eval_images=4,
           eval_batch_size=4, batch_size=8)  # 8 fake devices
  c.gan.discriminator_start = 2
  Trainer(c, tmp_path).train()
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in rows if "loss" in r]
  assert [r["step"] for r in train] == [2, 4]
  assert "adaptive_gan_weight" not in train[0] and train[1]["adaptive_gan_weight"] > 0
  assert all(np.isfinite(r["loss"]) for r in train)
  assert rows[-1]["step"] == 4 and np.isfinite(rows[-1]["eval/psnr"])
