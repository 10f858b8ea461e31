"""EnCodec's codebook level (encodec/quantization/core_vq.py EuclideanCodebook): squared-l2
codes learned by exponential moving averages instead of gradients.

The codebook is state, not a parameter: `inited`, `cluster_size`, `embed` and `embed_avg`
are nnx.BatchStat buffers that a training forward updates in place (the trainer carries them
from step to step). In training: k-means (`kmeans_iters` Lloyd steps from codes sampled out
of the batch) initialises the codebook on the first batch; then the cluster sizes and code
sums move by `decay` and each code becomes its Laplace-smoothed mean. The commitment loss is
the only gradient term.

Dead codes: the original replaces codes whose EMA cluster size is under
`threshold_ema_dead_code` by batch vectors, then overwrites the whole codebook from the
averages in the same step, so the replacement never takes effect (encodec and audiocraft
alike). That is the default here; `persistent_expiry=True` makes replacements stick by
resetting those codes' averages too.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.quantizers.vq import codebook_stats
from pallas_kernels import nearest_code


def sample_vectors(rng, samples, num: int):
  """`num` rows of `samples`: a random permutation's first rows, or with replacement when the
  batch holds fewer vectors (as the original)."""
  n = samples.shape[0]
  if n >= num:
    return samples[jax.random.permutation(rng, n)[:num]]
  return samples[jax.random.randint(rng, (num,), 0, n)]


def kmeans(rng, samples, num_clusters: int, iters: int):
  """Lloyd's k-means from sampled centroids; empty clusters keep their centroid.
  Returns (centroids [K, D], cluster sizes [K])."""
  means = sample_vectors(rng, samples, num_clusters)

  def step(means, _):
    ids = nearest_code(samples, means, metric="l2")[0]
    counts = jnp.bincount(ids, length=num_clusters).astype(samples.dtype)
    sums = jax.ops.segment_sum(samples, ids, num_segments=num_clusters)
    new = sums / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where((counts == 0)[:, None], means, new), counts

  means, counts = jax.lax.scan(step, means, None, length=iters)
  return means, counts[-1]


class EMACodebook(nnx.Module):

  def __init__(self, dim: int, codebook_size: int, *, kmeans_init: bool = True,
               kmeans_iters: int = 50, decay: float = 0.99, epsilon: float = 1e-5,
               threshold_ema_dead_code: float = 2.0, commitment_weight: float = 1.0,
               persistent_expiry: bool = False, rngs: nnx.Rngs):
    self.dim, self.codebook_size = dim, codebook_size
    self.kmeans_iters, self.decay, self.epsilon = kmeans_iters, decay, epsilon
    self.threshold_ema_dead_code = threshold_ema_dead_code
    self.commitment_weight = commitment_weight
    self.persistent_expiry = persistent_expiry
    if kmeans_init:
      embed = jnp.zeros((codebook_size, dim), jnp.float32)
    else:  # torch's kaiming_uniform_, as the original's uniform_init
      bound = (6.0 / dim) ** 0.5
      embed = jax.random.uniform(rngs.params(), (codebook_size, dim), jnp.float32, -bound, bound)
    self.inited = nnx.BatchStat(jnp.array([0.0 if kmeans_init else 1.0], jnp.float32))
    self.cluster_size = nnx.BatchStat(jnp.zeros((codebook_size,), jnp.float32))
    self.embed = nnx.BatchStat(embed)
    self.embed_avg = nnx.BatchStat(embed)

  def lookup(self, ids):
    return jnp.take(self.embed[...], ids, axis=0)

  def search(self, flat):
    return nearest_code(flat, self.embed[...], metric="l2")[0]

  def _train_update(self, flat, rng):
    """The original's forward in training mode, on the buffers; returns the ids."""
    init_rng, expire_rng = jax.random.split(rng)

    def initialise(_):
      means, counts = kmeans(init_rng, flat, self.codebook_size, self.kmeans_iters)
      return means, means, counts

    embed, embed_avg, cluster_size = jax.lax.cond(
        self.inited[...][0] > 0, lambda _: (self.embed[...], self.embed_avg[...],
                                            self.cluster_size[...]), initialise, None)
    ids = nearest_code(flat, embed, metric="l2")[0]
    codes = embed  # this step quantizes with the codebook before expiry and EMA
    expired = cluster_size < self.threshold_ema_dead_code
    onehot = jax.nn.one_hot(ids, self.codebook_size, dtype=flat.dtype)
    d = self.decay
    cluster_size = cluster_size * d + onehot.sum(0) * (1 - d)
    embed_avg = embed_avg * d + (onehot.T @ flat) * (1 - d)
    total = cluster_size.sum()
    smoothed = (cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
    embed = embed_avg / smoothed[:, None]
    if self.persistent_expiry:  # the replacement survives: its average is set to match
      fresh = sample_vectors(expire_rng, flat, self.codebook_size)
      embed = jnp.where(expired[:, None], fresh, embed)
      embed_avg = jnp.where(expired[:, None], fresh * smoothed[:, None], embed_avg)
    self.embed[...] = embed
    self.embed_avg[...] = embed_avg
    self.cluster_size[...] = cluster_size
    self.inited[...] = jnp.ones_like(self.inited[...])
    return ids, codes

  def __call__(self, z, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """z [B, T, D] -> (codes [B, T, D], aux) as a ResidualVQ level."""
    z = jnp.asarray(z, jnp.float32)
    flat = z.reshape(-1, self.dim)
    if train:
      if rngs is None:
        raise ValueError("training an EMA codebook needs rngs with a 'sample' stream "
                         "(k-means initialisation and dead-code replacement)")
      ids, codes = self._train_update(jax.lax.stop_gradient(flat), rngs.sample())
      z_q = jnp.take(codes, ids, axis=0).reshape(z.shape)
    else:
      ids = self.search(flat)
      z_q = self.lookup(ids).reshape(z.shape)
    ids = ids.reshape(z.shape[:-1])
    commitment = self.commitment_weight * jnp.mean(
        (jax.lax.stop_gradient(z_q) - z) ** 2, axis=(1, 2))
    z_st = z + jax.lax.stop_gradient(z_q - z)
    aux = {"ids": ids, "commitment_loss": commitment,
           "codebook_loss": jnp.zeros_like(commitment), **codebook_stats(ids, self.codebook_size)}
    return z_st, aux
