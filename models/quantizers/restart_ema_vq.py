"""VideoGPT's codebook as OmniTokenizer uses it (OmniTokenizer/modules/codebook.py).

The codes are state, not parameters: `embeddings` [K, C], the EMA cluster sizes `N` and code
sums `z_avg`, and the EMA of per-code usage `codebook_usage` are nnx.BatchStat buffers that a
training forward updates (the trainer carries them from step to step). Squared-l2 search on
the raw (unnormalised) codes; OmniTokenizer l2-normalises the encoder output before it.

In training: the first batch initialises every code from batch vectors (tiled with noise
std 0.01/sqrt(C) when the batch holds fewer than K); each step then moves `N` and `z_avg` by
0.99 and sets each code to its Laplace-smoothed mean; with restarts, codes whose `N` is under
`restart_threshold` become random batch vectors. The step quantizes with the codebook before
its update, and the commitment loss 0.25 * mse(z, sg(code)) is the only gradient term.

One difference from the original, on purpose: the original re-initialises on the first
training batch even after loading a checkpoint (its `_need_init` is not saved); here `inited`
is a buffer, so fine-tuning a released model keeps its codebook.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.quantizers.vq import codebook_stats
from pallas_kernels import nearest_code

COMMITMENT = 0.25  # fixed in the original, whatever --commitment_weight says
DECAY = 0.99
USAGE_DECAY = 0.99


def tiled_sample(rng, flat, num: int):
  """`num` batch vectors in random order; a batch of fewer is repeated and jittered first."""
  n, c = flat.shape
  noise_rng, perm_rng = jax.random.split(rng)
  if n < num:
    repeats = -(-num // n)
    flat = jnp.tile(flat, (repeats, 1))
    flat = flat + jax.random.normal(noise_rng, flat.shape, flat.dtype) * (0.01 / c ** 0.5)
  return flat[jax.random.permutation(perm_rng, flat.shape[0])[:num]]


class RestartEMACodebook(nnx.Module):

  def __init__(self, codebook_size: int, dim: int, *, restarts: bool = False,
               restart_threshold: float = 1.0, rngs: nnx.Rngs):
    self.codebook_size, self.dim = codebook_size, dim
    self.restarts, self.restart_threshold = restarts, restart_threshold
    embeddings = jax.random.normal(rngs.params(), (codebook_size, dim), jnp.float32)
    self.embeddings = nnx.BatchStat(embeddings)
    self.N = nnx.BatchStat(jnp.zeros((codebook_size,), jnp.float32))
    self.z_avg = nnx.BatchStat(embeddings)
    self.codebook_usage = nnx.BatchStat(jnp.zeros((codebook_size,), jnp.float32))
    self.inited = nnx.BatchStat(jnp.zeros((), jnp.float32))
    self.calls = nnx.BatchStat(jnp.zeros((), jnp.int32))

  def lookup(self, ids):
    return jnp.take(self.embeddings[...], ids, axis=0)

  def search(self, flat):
    return nearest_code(flat, self.embeddings[...], metric="l2")[0]

  def _train_update(self, flat, rng):
    """The original's training forward on the buffers; returns (ids, the codes used)."""
    k = self.codebook_size
    init_rng, restart_rng = jax.random.split(rng)

    def initialise(_):
      fresh = tiled_sample(init_rng, flat, k)
      return fresh, fresh, jnp.ones((k,), jnp.float32)

    embeddings, z_avg, n_ema = jax.lax.cond(
        self.inited[...] > 0, lambda _: (self.embeddings[...], self.z_avg[...], self.N[...]),
        initialise, None)
    ids = nearest_code(flat, embeddings, metric="l2")[0]
    onehot = jax.nn.one_hot(ids, k, dtype=flat.dtype)
    n_ema = n_ema * DECAY + onehot.sum(0) * (1 - DECAY)
    z_avg = z_avg * DECAY + (onehot.T @ flat) * (1 - DECAY)
    total = n_ema.sum()
    weights = (n_ema + 1e-7) / (total + k * 1e-7) * total
    updated = z_avg / weights[:, None]
    if self.restarts:
      used = (n_ema >= self.restart_threshold)[:, None]
      updated = jnp.where(used, updated, tiled_sample(restart_rng, flat, k))
    self.embeddings[...] = updated
    self.z_avg[...] = z_avg
    self.N[...] = n_ema
    self.inited[...] = jnp.ones_like(self.inited[...])
    return ids, embeddings

  def _track_usage(self, ids):
    share = jnp.bincount(ids, length=self.codebook_size).astype(jnp.float32) / ids.size
    first = self.calls[...] == 0
    usage = jnp.where(first, share, USAGE_DECAY * self.codebook_usage[...]
                      + (1 - USAGE_DECAY) * share)
    self.codebook_usage[...] = usage
    self.calls[...] = self.calls[...] + 1
    return jnp.mean(usage > 1.0 / self.codebook_size)

  def __call__(self, z, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """z [..., C] -> (codes with a straight-through gradient, aux with `ids` [...])."""
    z = jnp.asarray(z, jnp.float32)
    flat = z.reshape(-1, self.dim)
    if train:
      if rngs is None:
        raise ValueError("training this codebook needs rngs with a 'sample' stream "
                         "(initialisation from the batch and restarts)")
      ids, codes = self._train_update(jax.lax.stop_gradient(flat), rngs.sample())
      z_q = jnp.take(codes, ids, axis=0).reshape(z.shape)
      ema_usage = self._track_usage(ids)
    else:
      ids = self.search(flat)
      z_q = self.lookup(ids).reshape(z.shape)
      ema_usage = jnp.mean(self.codebook_usage[...] > 1.0 / self.codebook_size)
    commitment = COMMITMENT * jnp.mean((z - jax.lax.stop_gradient(z_q)) ** 2)
    aux = {"ids": ids.reshape(z.shape[:-1]).astype(jnp.int32), "quantizer_loss": commitment,
           "commitment_loss": commitment, "codebook_loss": jnp.zeros_like(commitment),
           "ema_codebook_usage": ema_usage,
           **codebook_stats(ids, self.codebook_size)}
    return z + jax.lax.stop_gradient(z_q - z), aux
