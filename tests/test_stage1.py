"""TiTok stage 1: cross-entropy against the frozen MaskGIT-VQGAN's proxy codes."""
import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from zoo.configs import titok
from zoo.train.losses import proxy_code_loss
from zoo.train.metrics_writer import read_metrics
from zoo.train.trainer import Trainer

pytestmark = pytest.mark.training  # long training checks: scheduled first


def test_proxy_code_loss_is_cross_entropy():
  logits = jnp.log(jnp.asarray([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))
  out = {"logits": logits.reshape(1, 1, 2, 3), "quantizer_loss": jnp.asarray(0.5),
         "codebook_usage": 0.0, "codebook_perplexity": 1.0}
  weights = ml_collections.ConfigDict(dict(quantizer=2.0))
  loss, metrics = proxy_code_loss(out, jnp.asarray([[0, 1]]), weights)
  expected_ce = -(math.log(0.5) + math.log(0.8)) / 2
  np.testing.assert_allclose(metrics["proxy_ce"], expected_ce, rtol=1e-6)
  np.testing.assert_allclose(loss, expected_ce + 1.0, rtol=1e-6)
  assert metrics["proxy_accuracy"] == 1.0
  with pytest.raises(ValueError, match="grid"):
    proxy_code_loss(out, jnp.asarray([[0, 1, 2]]), weights)
  with pytest.raises(ValueError, match="stage-1"):
    proxy_code_loss({"recon": logits}, jnp.asarray([[0, 1]]), weights)


def test_tiny_stage1_cross_entropy_falls_from_ln_1024(tmp_path):
  config = titok.get_config("tiny_stage1")
  config.update(dict(batch_size=8, total_steps=12, warmup_steps=2, log_every=1, eval_every=12,
                     checkpoint_every=100, num_eval_images=8, eval_batch_size=8))
  Trainer(config, tmp_path).train()
  rows = read_metrics(tmp_path)
  evals = [r for r in rows if "eval/proxy_ce" in r]
  assert abs(evals[0]["eval/proxy_ce"] - math.log(1024)) < 0.05  # untrained: uniform logits
  assert evals[-1]["eval/proxy_ce"] < evals[0]["eval/proxy_ce"] - 0.3
  train_ce = [r["proxy_ce"] for r in rows if "proxy_ce" in r]
  assert train_ce[-1] < train_ce[0]


def test_stage1_configs_of_the_released_models():
  config = titok.get_config("titok_s128_stage1")
  assert config.model == "titok_s128" and config.objective == "proxy_codes"
  assert not config.model_overrides.finetune_decoder
  assert (config.learning_rate, config.end_learning_rate, config.warmup_steps) == (1e-4, 1e-5,
                                                                                  10_000)
  with pytest.raises(ValueError, match="legacy"):
    titok.get_config("titok_bl64_vq8k_stage1")
