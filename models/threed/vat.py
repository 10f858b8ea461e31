"""A variational 3D shape tokenizer after VAT ("3D representation in 512-Byte", arXiv
2412.02202), which has no public code: this is the zoo's own reading of the paper.

Encoder (3DShape2VecSet's, models/threed/shape2vecset.py): `num_tokens` farthest-point-sampled
surface points become latent queries that cross-attend to every Fourier-embedded surface point
(with its normal), then `encoder_depth` self-attention blocks. Variational bottleneck: each
token maps to a diagonal Gaussian of `latent_dim` channels (mean, logvar; KL to N(0, I)), so the
codes live in one standard-normal space. Multi-scale residual quantization
(models/quantizers/multiscale_rvq.py) turns the Gaussian's mean (a draw in training) into ids
coarse to fine: `scales` token counts, each scale the residual of the ones before, the last
equal to `num_tokens`; any prefix of scales decodes. Decoder: the quantized tokens go up to
`width`, through `decoder_depth` self-attention blocks; 3 x R0^2 learned plane queries
cross-attend to them and each expands to a `triplane_upsample`^2 patch of `triplane_channels`
features, giving three R x R planes (xy, xz, yz; R = R0 x upsample). A query point's
occupancy logit is an MLP of the sum of its bilinearly sampled plane features.

Choices where the paper is silent (documented, configurable): the quantizer sees the Gaussian's
mean at evaluation; shared codebook across scales by default; area-down/linear-up resampling
on the token axis; the plane layout and the 2-layer occupancy MLP.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from models.layers.perceiver import Attention, FeedForward, PreNorm
from models.layers.transformer import run_blocks
from models.quantizers.gaussian import DiagonalGaussian
from models.quantizers.multiscale_rvq import MultiScaleResidualVQ, check_scales
from models.threed.farthest_point_sampling import farthest_point_sample, gather_points
from models.threed.inputs import check_points
from models.threed.point_embed import PointEmbed
from models.threed.shape2vecset import LatentBlock


@dataclasses.dataclass(frozen=True)
class VATConfig:
  num_inputs: int = 2048  # surface points per shape (the data default)
  num_tokens: int = 256
  width: int = 512
  heads: int = 8
  dim_head: int = 64
  encoder_depth: int = 8
  decoder_depth: int = 8
  latent_dim: int = 16
  scales: tuple[int, ...] = (1, 4, 16, 64, 256)
  codebook_size: int = 4096  # 12 bits: (1 + 4 + 16 + 64 + 256) x 12 bits = 511.5 bytes
  shared_codebook: bool = True
  commitment_cost: float = 0.25
  scale_dropout: float = 0.5  # fraction of a training batch that keeps a random prefix
  triplane_tokens: int = 16  # R0: plane queries per side
  triplane_upsample: int = 4  # R = 64
  triplane_channels: int = 32
  head_hidden: int = 128
  use_normals: bool = True
  point_embed_hidden: int = 48
  remat: bool = False

  @property
  def dim(self) -> int:  # LatentBlock reads cfg.dim, heads and dim_head
    return self.width

  @property
  def triplane_resolution(self) -> int:
    return self.triplane_tokens * self.triplane_upsample


def _linear(cin, cout, *, rngs, dtype):
  return nnx.Linear(cin, cout, dtype=dtype, rngs=rngs)


def sample_plane(plane, uv):
  """Bilinear sample of plane [B, R, R, C] at uv [B, Q, 2] in [-1, 1] (align corners)."""
  r = plane.shape[1]
  xy = (uv + 1.0) * 0.5 * (r - 1)
  x0 = jnp.clip(jnp.floor(xy), 0, r - 2).astype(jnp.int32)
  frac = jnp.clip(xy - x0, 0.0, 1.0)
  rows = jax.vmap(lambda p, i, j: p[i, j])  # per batch: p [R, R, C], i/j [Q]
  corner = lambda di, dj: rows(plane, x0[..., 0] + di, x0[..., 1] + dj)
  fu, fv = frac[..., :1], frac[..., 1:]
  return ((1 - fu) * (1 - fv) * corner(0, 0) + (1 - fu) * fv * corner(0, 1)
          + fu * (1 - fv) * corner(1, 0) + fu * fv * corner(1, 1))


class VAT(nnx.Module):

  def __init__(self, config: VATConfig, *, rngs: nnx.Rngs, dtype=None):
    cfg = self.config = config
    check_scales(cfg.scales, cfg.num_tokens)
    if cfg.scales[-1] != cfg.num_tokens:
      raise ValueError(f"the finest scale {cfg.scales[-1]} must be num_tokens {cfg.num_tokens}")
    if cfg.num_tokens > cfg.num_inputs:
      raise ValueError(f"num_tokens {cfg.num_tokens} exceeds num_inputs {cfg.num_inputs}")
    w = cfg.width
    self.point_embed = PointEmbed(w, hidden_dim=cfg.point_embed_hidden, rngs=rngs, dtype=dtype)
    self.normal_proj = _linear(3, w, rngs=rngs, dtype=dtype) if cfg.use_normals else None
    self.encoder_cross_attn = PreNorm(
        w, Attention(w, w, heads=1, dim_head=w, rngs=rngs, dtype=dtype), context_dim=w,
        rngs=rngs, dtype=dtype)
    self.encoder_ff = PreNorm(w, FeedForward(w, rngs=rngs, dtype=dtype), rngs=rngs, dtype=dtype)
    self.encoder_layers = nnx.List([LatentBlock(cfg, rngs=rngs, dtype=dtype)
                                    for _ in range(cfg.encoder_depth)])
    self.mean_fc = _linear(w, cfg.latent_dim, rngs=rngs, dtype=dtype)
    self.logvar_fc = _linear(w, cfg.latent_dim, rngs=rngs, dtype=dtype)
    self.quantizer = MultiScaleResidualVQ(
        cfg.scales, cfg.codebook_size, cfg.latent_dim, shared_codebook=cfg.shared_codebook,
        commitment_cost=cfg.commitment_cost, rngs=rngs)
    self.proj = _linear(cfg.latent_dim, w, rngs=rngs, dtype=dtype)
    self.decoder_layers = nnx.List([LatentBlock(cfg, rngs=rngs, dtype=dtype)
                                    for _ in range(cfg.decoder_depth)])
    self.plane_queries = nnx.Param(
        0.02 * jax.random.normal(rngs.params(), (3 * cfg.triplane_tokens ** 2, w)))
    self.plane_cross_attn = PreNorm(
        w, Attention(w, w, heads=cfg.heads, dim_head=cfg.dim_head, rngs=rngs, dtype=dtype),
        context_dim=w, rngs=rngs, dtype=dtype)
    self.plane_ff = PreNorm(w, FeedForward(w, rngs=rngs, dtype=dtype), rngs=rngs, dtype=dtype)
    self.to_planes = _linear(w, cfg.triplane_upsample ** 2 * cfg.triplane_channels, rngs=rngs,
                             dtype=dtype)
    self.head_in = _linear(cfg.triplane_channels, cfg.head_hidden, rngs=rngs, dtype=dtype)
    self.head_out = _linear(cfg.head_hidden, 1, rngs=rngs, dtype=dtype)

  # --- sizes -----------------------------------------------------------------------------
  @property
  def bits_per_shape(self) -> float:
    return self.quantizer.bits

  @property
  def bytes_per_shape(self) -> float:
    return self.bits_per_shape / 8

  def bytes_for_scales(self, num_scales: int) -> float:
    return sum(self.config.scales[:num_scales]) * math.log2(self.config.codebook_size) / 8

  # --- encoder ---------------------------------------------------------------------------
  def _embed(self, points, normals):
    x = self.point_embed(points)
    if self.normal_proj is not None:
      if normals is None:
        raise ValueError("this VAT embeds surface normals: pass normals [B, N, 3]")
      x = x + self.normal_proj(normals.astype(jnp.float32))
    return x

  def posterior(self, points, normals=None, *, fps_key=None) -> DiagonalGaussian:
    cfg = self.config
    check_points(points, min_points=cfg.num_tokens, name="points")
    if normals is not None and normals.shape != points.shape:
      raise ValueError(f"normals {normals.shape} must match points {points.shape}")
    idx = farthest_point_sample(points, cfg.num_tokens, key=fps_key)
    queries = self._embed(gather_points(points.astype(jnp.float32), idx),
                          None if normals is None else gather_points(normals, idx))
    x = self.encoder_cross_attn(queries, self._embed(points, normals)) + queries
    x = self.encoder_ff(x) + x
    x = run_blocks(self.encoder_layers, x, remat=cfg.remat)
    return DiagonalGaussian(jnp.concatenate([self.mean_fc(x), self.logvar_fc(x)], axis=-1))

  def encode(self, points, normals=None, *, fps_key=None):
    """Surface points [B, N, 3] (and normals) -> ids, one [B, n_k] int32 array per scale."""
    _, aux = self.quantizer(self.posterior(points, normals, fps_key=fps_key).mode())
    return aux["ids"]

  # --- decoder ---------------------------------------------------------------------------
  def _triplane(self, tokens):
    cfg = self.config
    x = run_blocks(self.decoder_layers, self.proj(tokens), remat=cfg.remat)
    b, r0, up, c = x.shape[0], cfg.triplane_tokens, cfg.triplane_upsample, cfg.triplane_channels
    q = jnp.broadcast_to(self.plane_queries[...].astype(x.dtype), (b, *self.plane_queries.shape))
    q = self.plane_cross_attn(q, x) + q
    q = self.plane_ff(q) + q
    planes = self.to_planes(q).reshape(b, 3, r0, r0, up, up, c)
    return planes.transpose(0, 1, 2, 4, 3, 5, 6).reshape(b, 3, r0 * up, r0 * up, c)

  def decode(self, ids):
    """Ids of the first k scales (k >= 1) -> the triplane [B, 3, R, R, C]."""
    return self._triplane(self.quantizer.lookup(tuple(ids), num_tokens=self.config.num_tokens))

  def decoder_context(self, ids):
    """The evaluator's protocol (zoo/evals/shape_reconstruction.py): the triplane."""
    return self.decode(ids)

  def occupancy(self, triplane, queries):
    """Occupancy logits [B, Q] of query points [B, Q, 3] from a triplane."""
    check_points(queries, bound=None, name="queries")
    q = queries.astype(jnp.float32)
    feats = sum(sample_plane(triplane[:, k].astype(jnp.float32), q[..., axes])
                for k, axes in enumerate(([0, 1], [0, 2], [1, 2])))
    return self.head_out(jax.nn.gelu(self.head_in(feats), approximate=False))[..., 0]

  def mesh(self, ids, resolution: int = 128):
    """Marching-cubes meshes of the decoded shapes: [(vertices [V, 3], faces [F, 3])] per shape."""
    from zoo.evals.shape_reconstruction import extract_mesh, occupancy_grid
    triplane = nnx.jit(type(self).decode)(self, tuple(ids))
    return [extract_mesh(occupancy_grid(self, triplane[b:b + 1], resolution))
            for b in range(triplane.shape[0])]

  # --- training --------------------------------------------------------------------------
  def __call__(self, points, *, queries, labels=None, normals=None, train: bool = False,
               rngs: nnx.Rngs | None = None, num_scales: int | None = None):
    """The training forward: occupancy logits of `queries`, and with `labels` the losses
    (occupancy BCE, KL, quantizer) for the trainer. In training the quantizer sees a posterior
    draw and `scale_dropout` of the batch keeps a random prefix of scales."""
    cfg = self.config
    posterior = self.posterior(points, normals, fps_key=None)
    b = points.shape[0]
    keep = jnp.full((b,), num_scales or len(cfg.scales), jnp.int32)
    z = posterior.mode()
    if train:
      if rngs is None:
        raise ValueError("training needs rngs= (posterior draws and scale dropout)")
      z = posterior.sample(rngs.sample())
      drawn = jax.random.randint(rngs.sample(), (b,), 1, len(cfg.scales) + 1)
      keep = jnp.where(jnp.arange(b) < int(b * cfg.scale_dropout), drawn, keep)
    z_q, aux = self.quantizer(z, keep=keep)
    logits = self.occupancy(self._triplane(z_q), queries)
    out = {"logits": logits, "ids": aux["ids"], "quantizer_loss": aux["quantizer_loss"],
           "kl": posterior.kl() / (z.shape[1] * z.shape[2]),
           "stats": {k: aux[k] for k in ("codebook_usage", "codebook_perplexity")}}
    if labels is not None:
      out["losses"] = {"occupancy_bce": jnp.mean(
          optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)))}
    return out
