"""3DShape2VecSet (1zb/3DShape2VecSet, models_ae.py): a shape as a set of latent vectors.

Farthest-point sampling picks `num_latents` of the surface points as queries; one PreNorm
cross-attention (one head of width `dim`) and a GEGLU feed-forward pull the whole point cloud
into them (both Fourier-embedded, models/threed/point_embed.py). The KL autoencoders map each
latent to a diagonal Gaussian of `latent_dim` channels and back up with `proj`; the plain ones
(ae_*) keep the `dim`-wide latents. The decoder runs `depth` self-attention blocks over the
latents, then cross-attends from embedded query points to them and reads one occupancy logit
per query.

Differences from the official code, by design: farthest-point sampling starts at point 0
(torch_cluster's starts at random; pass `fps_key` for that), `encode` returns the posterior
mean unless asked to sample, any number of surface points >= num_latents is accepted (the
official asserts the training count), and the latent blocks have no drop path (0.1 in
training; identity at evaluation, where the outputs agree).
"""
import dataclasses

import jax.numpy as jnp
from flax import nnx

from models.layers.perceiver import Attention, FeedForward, PreNorm
from models.layers.transformer import run_blocks
from models.quantizers.gaussian import DiagonalGaussian
from models.threed.farthest_point_sampling import farthest_point_sample, gather_points
from models.threed.inputs import check_points
from models.threed.point_embed import PointEmbed


@dataclasses.dataclass(frozen=True)
class Shape2VecSetConfig:
  dim: int = 512
  num_latents: int = 512
  latent_dim: int | None = 64  # None: the deterministic autoencoder (ae_d*_m*)
  num_inputs: int = 2048  # surface points per shape in training (the data default)
  depth: int = 24
  heads: int = 8
  dim_head: int = 64
  decoder_ff: bool = False
  point_embed_hidden: int = 48

  @property
  def is_kl(self) -> bool:
    return self.latent_dim is not None


class LatentBlock(nnx.Module):
  """x + attn(norm(x)), then x + ff(norm(x)); the official `layers.i` pair [attn, ff]."""

  def __init__(self, cfg: Shape2VecSetConfig, *, rngs: nnx.Rngs, dtype=None):
    self.attn = PreNorm(cfg.dim, Attention(cfg.dim, heads=cfg.heads, dim_head=cfg.dim_head,
                                           rngs=rngs, dtype=dtype), rngs=rngs, dtype=dtype)
    self.ff = PreNorm(cfg.dim, FeedForward(cfg.dim, rngs=rngs, dtype=dtype), rngs=rngs,
                      dtype=dtype)

  def __call__(self, x, *, mask=None):
    del mask  # run_blocks' interface; latents attend to every latent
    x = x + self.attn(x)
    return x + self.ff(x)


class Shape2VecSet(nnx.Module):

  def __init__(self, config: Shape2VecSetConfig, *, rngs: nnx.Rngs, dtype=None):
    cfg = self.config = config
    if cfg.num_latents > cfg.num_inputs:
      raise ValueError(f"num_latents {cfg.num_latents} exceeds num_inputs {cfg.num_inputs}")
    d = cfg.dim
    self.point_embed = PointEmbed(d, hidden_dim=cfg.point_embed_hidden, rngs=rngs, dtype=dtype)
    self.encoder_cross_attn = PreNorm(
        d, Attention(d, d, heads=1, dim_head=d, rngs=rngs, dtype=dtype), context_dim=d,
        rngs=rngs, dtype=dtype)
    self.encoder_ff = PreNorm(d, FeedForward(d, rngs=rngs, dtype=dtype), rngs=rngs, dtype=dtype)
    if cfg.is_kl:
      linear = lambda i, o: nnx.Linear(i, o, dtype=dtype, rngs=rngs)
      self.mean_fc, self.logvar_fc = linear(d, cfg.latent_dim), linear(d, cfg.latent_dim)
      self.proj = linear(cfg.latent_dim, d)
    self.layers = nnx.List([LatentBlock(cfg, rngs=rngs, dtype=dtype) for _ in range(cfg.depth)])
    self.decoder_cross_attn = PreNorm(
        d, Attention(d, d, heads=1, dim_head=d, rngs=rngs, dtype=dtype), context_dim=d,
        rngs=rngs, dtype=dtype)
    self.decoder_ff = (PreNorm(d, FeedForward(d, rngs=rngs, dtype=dtype), rngs=rngs,
                               dtype=dtype) if cfg.decoder_ff else None)
    self.to_outputs = nnx.Linear(d, 1, dtype=dtype, rngs=rngs)

  @property
  def latent_width(self) -> int:
    return self.config.latent_dim if self.config.is_kl else self.config.dim

  @property
  def bytes_per_shape(self) -> int:
    """The float32 latents of one shape."""
    return 4 * self.config.num_latents * self.latent_width

  def latent_queries(self, points, *, fps_key=None):
    """The farthest-point-sampled surface points the latents start from: [B, M, 3]."""
    check_points(points, min_points=self.config.num_latents, name="points")
    idx = farthest_point_sample(points, self.config.num_latents, key=fps_key)
    return gather_points(points.astype(jnp.float32), idx)

  def encoder_features(self, points, *, fps_key=None):
    """[B, N, 3] surface points -> [B, M, dim] set features (before any Gaussian)."""
    queries = self.point_embed(self.latent_queries(points, fps_key=fps_key))
    x = self.encoder_cross_attn(queries, self.point_embed(points)) + queries
    return self.encoder_ff(x) + x

  def posterior(self, points, *, fps_key=None) -> DiagonalGaussian:
    """The KL models' Gaussian over the latents (logvar clamped to [-30, 20])."""
    if not self.config.is_kl:
      raise ValueError("a plain autoencoder (ae_*) has no posterior; use encode()")
    x = self.encoder_features(points, fps_key=fps_key)
    return DiagonalGaussian(jnp.concatenate([self.mean_fc(x), self.logvar_fc(x)], axis=-1))

  def encode(self, points, *, sample: bool = False, key=None, fps_key=None):
    """Surface points [B, N, 3] in [-1, 1]^3 -> latents [B, num_latents, latent_width].

    KL models return the posterior mean, or a draw with `sample=True` (needs `key`).
    """
    if not self.config.is_kl:
      if sample:
        raise ValueError("sample=True needs a KL model; ae_* latents are deterministic")
      return self.encoder_features(points, fps_key=fps_key)
    posterior = self.posterior(points, fps_key=fps_key)
    if not sample:
      return posterior.mode()
    if key is None:
      raise ValueError("sample=True needs key= (a jax.random key)")
    return posterior.sample(key)

  @staticmethod
  def kl(posterior: DiagonalGaussian):
    """KL to N(0, I) averaged over latents and channels, per shape: [B] (the official term)."""
    return posterior.kl() / (posterior.mean.shape[1] * posterior.mean.shape[2])

  def decoder_context(self, latents, *, remat: bool = False):
    """Latents -> the [B, M, dim] set the query points attend to (computed once per shape)."""
    want = self.latent_width
    if latents.ndim != 3 or latents.shape[-1] != want:
      raise ValueError(f"latents must be [B, M, {want}]; got shape {latents.shape}")
    x = self.proj(latents) if self.config.is_kl else latents
    return run_blocks(self.layers, x, remat=remat)

  def occupancy(self, context, queries):
    """Occupancy logits [B, Q] of query points [B, Q, 3] given a decoder context."""
    check_points(queries, bound=None, name="queries")
    q = self.point_embed(queries)
    h = self.decoder_cross_attn(q, context)
    if self.decoder_ff is not None:
      h = h + self.decoder_ff(h)
    return self.to_outputs(h)[..., 0].astype(jnp.float32)

  def decode(self, latents, queries):
    """Latents [B, M, latent_width] and query points [B, Q, 3] -> occupancy logits [B, Q]."""
    return self.occupancy(self.decoder_context(latents), queries)

  def __call__(self, points, queries):
    return self.decode(self.encode(points), queries)
