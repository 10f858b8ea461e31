"""CVQ-style dead-code re-anchoring (TA-TiTok's clustering_vq)."""
import jax
import jax.numpy as jnp
import numpy as np

from models.quantizers.reanchor import reanchor_codebook
from tests.test_train import tiny_config
from zoo.train.trainer import Trainer


def official_formula(codebook, usage, features, ids, l2):
  """The update of TA-TiTok's VectorQuantizer, written out in numpy (float64)."""
  k = len(codebook)
  usage = 0.99 * usage + 0.01 * np.bincount(ids, minlength=k) / len(ids)
  norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True) if l2 else x
  z, e = norm(features), norm(codebook)
  d = (z ** 2).sum(1)[:, None] + (e ** 2).sum(1)[None] - 2 * z @ e.T
  decay = np.exp(-(usage * k * 10) / (1 - 0.99) - 1e-3)[:, None]
  return codebook * (1 - decay) + features[d.argmin(0)] * decay, usage


def test_matches_the_official_formula():
  rng = np.random.default_rng(0)
  codebook = rng.standard_normal((16, 4)).astype(np.float32)
  features = rng.standard_normal((40, 4)).astype(np.float32)
  ids = rng.integers(0, 4, 40)  # only codes 0..3 are used
  usage = np.abs(rng.standard_normal(16)).astype(np.float32) * 0.01
  for l2 in (False, True):
    got = reanchor_codebook(jnp.asarray(codebook), jnp.asarray(usage), jnp.asarray(features),
                            jnp.asarray(ids), use_l2_norm=l2)
    want = official_formula(codebook.astype(np.float64), usage, features.astype(np.float64),
                            ids, l2)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_dead_codes_move_onto_features_and_used_codes_stay():
  codebook = jnp.asarray([[0.0, 0.0], [100.0, 100.0]])  # code 1 is dead, far from the data
  features = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
  usage = jnp.asarray([0.5, 0.0])
  new, new_usage = reanchor_codebook(codebook, usage, features, jnp.zeros(3, jnp.int32),
                                     use_l2_norm=False)
  np.testing.assert_allclose(new[0], codebook[0], atol=1e-6)  # used: decay ~ exp(-500)
  assert np.linalg.norm(new[1] - features[2]) < 0.2  # dead: pulled onto its nearest feature
  assert new_usage[0] > 0.5 and new_usage[1] == 0.0


def test_trainer_updates_codebook_and_usage(tmp_path):
  config = tiny_config(total_steps=3, eval_every=100, checkpoint_every=100,
                       codebook_reanchor=True, grad_accum_steps=2)
  trainer = Trainer(config, tmp_path)
  before = np.asarray(trainer.state["params"]["quantize"]["embedding"][...])
  state = trainer.train()
  usage = np.asarray(state["codebook_usage"])
  np.testing.assert_allclose(usage.sum(), 1 - 0.99 ** 3, rtol=1e-4)
  after = np.asarray(state["params"]["quantize"]["embedding"][...])
  moved = np.linalg.norm(after - before, axis=1)
  assert (moved > 0.1).mean() > 0.5  # most codes were dead and jumped to features
