"""LARP (hywang66/LARP): holistic 1D video tokens with a learned autoregressive prior.

A 16x128x128 clip is cut into 4x8x8 patches (4x16x16 = 1024 tokens) with a fixed 3-D sin-cos
position embedding. The encoder runs timm ViT blocks over [patches; 1024 learned queries]
with full attention and keeps the queries; the bottleneck projects them to 16-d and quantizes
them on an l2-normalised 8192-code book, sampling codes from softmax(cos / 0.03) in training
and taking the argmax at evaluation (always in float32), or draws them from a diagonal Gaussian
(the KL variant, mean and logvar interleaved). The decoder runs the same blocks over
[codes + a fixed 1-D sin-cos embedding; fixed 3-D sin-cos patch queries + a learned token-type
embedding], keeps the patch queries and maps each to its 4x8x8x3 pixels.

In training, GPT-C (models/video/gptc.py) predicts each code vector from the ones before it;
its next-code cross-entropy over two rounds of scheduled sampling flows back into the encoder
(LARP's "learned prior"). Clips of fewer frames (a multiple of the temporal patch) encode with
the position embeddings truncated and decode to as many frames, as `encode_eval` does.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes
from models.layers.sincos import sincos_1d, sincos_3d
from models.layers.transformer import layer_norm, run_blocks
from models.layers.video_patches import PatchEmbed3D, unpatchify
from models.layers.vit import Block
from models.quantizers.gaussian import DiagonalGaussian
from models.quantizers.vq import codebook_stats, l2_normalize
from models.video.gptc import GPTC, gptc_config
from models.video.inputs import check_videos


@dataclasses.dataclass(frozen=True)
class LARPConfig:
  input_size: int = 128
  frame_num: int = 16
  temporal_patch_size: int = 4
  patch_size: int = 8
  num_tokens: int = 1024
  encoder_width: int = 768
  encoder_heads: int = 12
  encoder_depth: int = 12
  decoder_width: int = 768
  decoder_heads: int = 12
  decoder_depth: int = 12
  bottleneck_dim: int = 16
  regularizer: str = "vq"  # "vq" (stochastic l2 VQ) or "kl" (diagonal Gaussian)
  codebook_size: int = 8192
  stochastic_temperature: float = 0.03
  commitment_weight: float = 0.25
  codebook_weight: float = 1.0
  latent_pe_base: float = 10000.0
  query_init_std: float = 0.02  # the latent queries' Gaussian init
  # The prior: a GPT-C size name, or None for a tokenizer without it.
  prior: str | None = "gptc-S"
  prior_rounds: int = 2
  prior_avg_over_rounds: bool = True
  mix_ss_max_ratio: float = 0.5
  mix_ss_peak_steps_ratio: float = 0.3
  latent_ce_temperature: float = 1.0
  prior_dropout: float = 0.1
  remat: bool = False

  def __post_init__(self):
    if self.regularizer not in ("vq", "kl"):
      raise ValueError(f"regularizer must be 'vq' or 'kl', got {self.regularizer!r}")
    if self.input_size % self.patch_size or self.frame_num % self.temporal_patch_size:
      raise ValueError(f"{self.frame_num}x{self.input_size}^2 clips do not split into "
                       f"{self.temporal_patch_size}x{self.patch_size}^2 patches")
    if self.prior is not None and self.num_tokens > 1024:
      raise ValueError(f"GPT-C's positions cover 1024 tokens; num_tokens is {self.num_tokens}")
    if self.prior is not None and self.regularizer != "vq":
      raise ValueError("the GPT-C prior predicts codes of the VQ bottleneck (regularizer 'vq')")

  @property
  def grid(self) -> tuple[int, int]:
    """(temporal, spatial) patches of a full clip."""
    return self.frame_num // self.temporal_patch_size, self.input_size // self.patch_size

  @property
  def patch_dim(self) -> int:
    return self.temporal_patch_size * self.patch_size ** 2 * 3


@functools.lru_cache(maxsize=None)
def _patch_pe(width: int, grid_size: int, frames: int) -> np.ndarray:
  return sincos_3d(width, grid_size, frames)


@functools.lru_cache(maxsize=None)
def _latent_pe(width: int, num_tokens: int, base: float) -> np.ndarray:
  return sincos_1d(width, np.arange(num_tokens), base).astype(np.float32)


def _dense(cin, cout, names, *, rngs, dtype, zero=False):
  init = nnx.initializers.zeros_init() if zero else nnx.initializers.xavier_uniform()
  return nnx.Linear(cin, cout, dtype=dtype, rngs=rngs, kernel_init=init,
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


class ParallelTransformer(nnx.Module):
  """Blocks over [context; queries] with full attention; returns the query positions."""

  def __init__(self, width, heads, depth, *, remat, rngs, dtype=None):
    self.remat = remat
    self.blocks = nnx.List([Block(width, heads, rngs=rngs, dtype=dtype) for _ in range(depth)])

  def __call__(self, context, queries):
    h = run_blocks(self.blocks, jnp.concatenate([context, queries], axis=1), remat=self.remat)
    return h[:, -queries.shape[1]:]


class Regularizer(nnx.Module):
  """The VQ codebook `embedding` [codebook_size, bottleneck_dim] (l2-normalised when used)."""

  def __init__(self, cfg: LARPConfig, *, rngs):
    bound = np.sqrt(6.0 / cfg.bottleneck_dim)  # kaiming_uniform_ on [N, D]: fan_in = D
    self.embedding = nnx.Param(jax.random.uniform(
        rngs.params(), (cfg.codebook_size, cfg.bottleneck_dim), jnp.float32, -bound, bound),
        **axes("codes", "code_dim"))


class Bottleneck(nnx.Module):
  def __init__(self, cfg: LARPConfig, *, rngs, dtype=None):
    project = cfg.bottleneck_dim * (2 if cfg.regularizer == "kl" else 1)
    self.in_linear = _dense(cfg.encoder_width, project, ("embed", "code_dim"), rngs=rngs,
                            dtype=dtype)
    self.out_linear = _dense(cfg.bottleneck_dim, cfg.decoder_width, ("code_dim", "embed"),
                             rngs=rngs, dtype=dtype)
    self.regularizer = Regularizer(cfg, rngs=rngs) if cfg.regularizer == "vq" else None


class OutputLayer(nnx.Module):
  def __init__(self, cfg: LARPConfig, *, rngs, dtype=None):
    self.norm_final = layer_norm(cfg.decoder_width, rngs=rngs, dtype=dtype, eps=1e-6)
    self.linear = _dense(cfg.decoder_width, cfg.patch_dim, ("embed", "patch"), rngs=rngs,
                         dtype=dtype, zero=True)

  def __call__(self, x):
    return self.linear(self.norm_final(x))


class LARP(nnx.Module):

  def __init__(self, cfg: LARPConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    self.dtype = dtype
    self.x_embedder = PatchEmbed3D(cfg.temporal_patch_size, cfg.patch_size, cfg.encoder_width,
                                   rngs=rngs, dtype=dtype)
    self.encoder_latent_query_embed = nnx.Param(cfg.query_init_std * jax.random.normal(
        rngs.params(), (cfg.num_tokens, cfg.encoder_width), jnp.float32), **axes(None, "embed"))
    self.encoder = ParallelTransformer(cfg.encoder_width, cfg.encoder_heads, cfg.encoder_depth,
                                       remat=cfg.remat, rngs=rngs, dtype=dtype)
    self.bottleneck = Bottleneck(cfg, rngs=rngs, dtype=dtype)
    self.decoder = ParallelTransformer(cfg.decoder_width, cfg.decoder_heads, cfg.decoder_depth,
                                       remat=cfg.remat, rngs=rngs, dtype=dtype)
    self.decoder_patch_query_token_type_embed = nnx.Param(0.02 * jax.random.normal(
        rngs.params(), (1, 1, cfg.decoder_width), jnp.float32), **axes(None, None, "embed"))
    self.final_layer = OutputLayer(cfg, rngs=rngs, dtype=dtype)
    # GPT-C's position table is 1024 long whatever the token count (GPTCConfig.max_seq_len).
    self.prior_model = (GPTC(gptc_config(cfg.prior, code_dim=cfg.bottleneck_dim,
                                         dropout=cfg.prior_dropout),
                             rngs=rngs, dtype=dtype) if cfg.prior else None)

  # The fixed position embeddings (the official buffers), constants under jit.
  def encoder_patch_pe(self):
    t, s = self.config.grid
    return _patch_pe(self.config.encoder_width, s, t)

  def decoder_latent_pe(self):
    c = self.config
    return _latent_pe(c.decoder_width, c.num_tokens, c.latent_pe_base)

  def decoder_patch_query_embed(self):
    t, s = self.config.grid
    return _patch_pe(self.config.decoder_width, s, t)

  def _check(self, video):
    c = self.config
    check_videos(video, size=c.input_size, frame_multiple=c.temporal_patch_size)
    if not 0 < video.shape[1] <= c.frame_num:
      raise ValueError(f"LARP encodes 1 to {c.frame_num} frames (a multiple of "
                       f"{c.temporal_patch_size}); got {video.shape[1]}")

  def encode_latents(self, video):
    """[B, T, H, W, 3] in [0, 1] -> the bottleneck's input projection [B, N, D or 2D]."""
    dtype = self.dtype or jnp.float32
    x = self.x_embedder(video.astype(dtype))
    x = x + jnp.asarray(self.encoder_patch_pe()[:x.shape[1]], x.dtype)  # fewer frames: truncated
    q = jnp.broadcast_to(self.encoder_latent_query_embed[...].astype(x.dtype),
                         (x.shape[0],) + self.encoder_latent_query_embed.shape)
    return self.bottleneck.in_linear(self.encoder(x, q))

  def codebook(self):
    """The l2-normalised codes [codebook_size, D], float32."""
    return l2_normalize(self.bottleneck.regularizer.embedding[...].astype(jnp.float32))

  def quantize(self, z, *, sample_key=None):
    """z [B, N, D] -> (codes with a straight-through gradient, aux); codes are drawn from
    softmax(cos / T) when `sample_key` is given, else the most likely one (the argmax)."""
    c = self.config
    z = l2_normalize(z.astype(jnp.float32))
    codebook = self.codebook()
    logits = jnp.einsum("bnd,kd->bnk", z, codebook) * (1.0 / c.stochastic_temperature)
    if sample_key is None:
      ids = jnp.argmax(jax.nn.softmax(logits, axis=-1), axis=-1)
    else:
      ids = jax.random.categorical(sample_key, logits, axis=-1)
    z_q = jnp.take(codebook, ids, axis=0)
    commitment = jnp.mean((jax.lax.stop_gradient(z_q) - z) ** 2)
    codebook_loss = jnp.mean((z_q - jax.lax.stop_gradient(z)) ** 2)
    aux = {"ids": ids.astype(jnp.int32),
           "quantizer_loss": c.commitment_weight * commitment + c.codebook_weight * codebook_loss,
           "commitment_loss": commitment, "codebook_loss": codebook_loss,
           **codebook_stats(ids, c.codebook_size)}
    return z + jax.lax.stop_gradient(z_q - z), aux

  def decode_latents(self, z, num_patches: int | None = None):
    """Bottleneck codes [B, N, D] -> video [B, T, H, W, 3] (not clipped); `num_patches` of
    the decoder's queries (fewer frames: the leading ones)."""
    c = self.config
    dtype = self.dtype or jnp.float32
    h = self.bottleneck.out_linear(z.astype(dtype))
    h = h + jnp.asarray(self.decoder_latent_pe(), h.dtype)
    queries = self.decoder_patch_query_embed()[:num_patches]
    queries = (jnp.asarray(queries, h.dtype)[None]
               + self.decoder_patch_query_token_type_embed[...].astype(h.dtype))
    queries = jnp.broadcast_to(queries, (h.shape[0],) + queries.shape[1:])
    x = self.final_layer(self.decoder(h, queries))
    s = c.input_size // c.patch_size
    return unpatchify(x, c.temporal_patch_size, c.patch_size, s, s).astype(jnp.float32)

  def _num_patches(self, frames: int) -> int:
    c = self.config
    return frames // c.temporal_patch_size * (c.input_size // c.patch_size) ** 2

  def encode(self, video):
    """Video [B, T, 128, 128, 3] in [0, 1] -> int32 ids [B, 1024] (VQ, the argmax code) or the
    posterior mean [B, 1024, 16] (KL)."""
    self._check(video)
    if self.config.regularizer == "kl":
      return _encode_mean(self, video)
    return _encode_ids(self, video)

  def decode(self, tokens, *, frames: int | None = None, clip: bool = True):
    """ids [B, N] (or KL latents [B, N, D]) -> video [B, frames, H, W, 3] in [0, 1]."""
    c = self.config
    frames = c.frame_num if frames is None else frames
    if frames % c.temporal_patch_size or not 0 < frames <= c.frame_num:
      raise ValueError(f"LARP decodes 1 to {c.frame_num} frames in multiples of "
                       f"{c.temporal_patch_size}; asked for {frames}")
    self._check_tokens(tokens)
    video = _decode(self, tokens, self._num_patches(frames))
    return jnp.clip(video, 0.0, 1.0) if clip else video

  def _check_tokens(self, tokens):
    c = self.config
    if c.regularizer == "vq":
      if getattr(tokens, "ndim", None) != 2 or tokens.shape[1] != c.num_tokens:
        raise ValueError(f"LARP token ids must be [B, {c.num_tokens}]; got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}")
      if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"token ids must be integers; got {tokens.dtype}")
      if not isinstance(tokens, jax.core.Tracer) and tokens.size:
        lo, hi = int(np.min(tokens)), int(np.max(tokens))
        if lo < 0 or hi >= c.codebook_size:
          raise ValueError(f"token ids must be in [0, {c.codebook_size}); got [{lo}, {hi}]")
    elif getattr(tokens, "ndim", None) != 3 or tokens.shape[1:] != (c.num_tokens,
                                                                       c.bottleneck_dim):
      raise ValueError(f"LARP KL latents must be [B, {c.num_tokens}, {c.bottleneck_dim}]; got "
                       f"{getattr(tokens, 'shape', None)}")

  def prior_logits(self, ids):
    """Teacher-forced next-code logits of the prior: ids [B, N] -> [B, N - 1, codebook_size]
    (position i scores code i + 1), from the l2-normalised codes, as in training."""
    if self.prior_model is None:
      raise ValueError("this LARP has no prior (config.prior is None)")
    self._check_tokens(ids)
    return _prior_logits(self, ids)

  def _logits(self, codes, emb, *, train, rngs):
    pred = self.prior_model.ar_predict(codes, train=train, rngs=rngs).astype(jnp.float32)
    return jnp.einsum("bnd,kd->bnk", pred, emb)[:, 1:] / self.config.latent_ce_temperature

  def prior_loss(self, codes, ids, *, progress, train: bool, rngs: nnx.Rngs):
    """The prior's next-code cross-entropy over `prior_rounds` rounds of scheduled sampling.

    After each round but the last, a random fraction of the positions (rising linearly to
    mix_ss_max_ratio at mix_ss_peak_steps_ratio of training, `progress` in [0, 1]) takes a
    code drawn from that round's prediction instead of the true one. The codebook is a
    constant here (the official get_emb detaches it): the loss reaches the encoder through the
    straight-through codes."""
    c = self.config
    emb = jax.lax.stop_gradient(self.codebook())
    b, n, d = codes.shape
    if c.mix_ss_peak_steps_ratio > 0:
      ratio = jnp.minimum(progress / c.mix_ss_peak_steps_ratio * c.mix_ss_max_ratio,
                          c.mix_ss_max_ratio)
    else:  # no warm-up of the ratio (use_mix_ss false): the maximum from the start
      ratio = c.mix_ss_max_ratio
    replace = jax.random.uniform(rngs.sample(), (b, n - 1, 1)) < ratio
    logits_per_round, inputs = [], codes
    for r in range(c.prior_rounds):
      logits = self._logits(inputs, emb, train=train, rngs=rngs)
      logits_per_round.append(logits)
      if r < c.prior_rounds - 1:
        drawn = jnp.take(emb, jax.random.categorical(rngs.sample(), logits, axis=-1), axis=0)
        inputs = jnp.concatenate([codes[:, :1], jnp.where(replace, drawn, codes[:, 1:])], 1)
    if not c.prior_avg_over_rounds:
      logits_per_round = logits_per_round[-1:]
    logits = jnp.stack(logits_per_round)
    labels = ids[:, 1:]
    picked = jnp.take_along_axis(logits, jnp.broadcast_to(labels, logits.shape[:-1])[..., None],
                                 axis=-1)[..., 0]
    ce = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)
    top5 = jax.lax.top_k(logits_per_round[0], 5)[1]
    stats = {"prior_top1": jnp.mean(top5[..., 0] == labels),
             "prior_top5": jnp.mean(jnp.any(top5 == labels[..., None], axis=-1))}
    return ce, stats

  def __call__(self, video, *, train: bool = True, rngs: nnx.Rngs | None = None,
               progress=0.0):
    """Training forward: recon, the quantizer (or KL) terms and the prior's `latent_ce`.

    `progress` is the fraction of training done (step / total steps), which sets the
    scheduled-sampling ratio of the prior."""
    c = self.config
    check_videos(video, size=c.input_size, frames=c.frame_num)
    if train and rngs is None:
      raise ValueError("LARP's training forward samples codes: pass rngs=nnx.Rngs(sample=key)")
    z = self.encode_latents(video)
    out = {"losses": {}, "stats": {}}
    if c.regularizer == "kl":
      posterior = DiagonalGaussian(z, interleaved=True)
      codes = posterior.sample(rngs.sample()) if train else posterior.mode()
      out["kl"] = posterior.kl()
    else:
      codes, aux = self.quantize(z, sample_key=rngs.sample() if train else None)
      out.update(aux)
      if self.prior_model is not None and train:  # evaluation needs only the reconstruction
        ce, stats = self.prior_loss(codes, aux["ids"], progress=progress, train=train,
                                    rngs=rngs)
        out["losses"]["latent_ce"] = ce
        out["stats"].update(stats)
    out["recon"] = self.decode_latents(codes, self._num_patches(video.shape[1]))
    return out


@functools.partial(nnx.jit, graph=False)
def _encode_ids(model: LARP, video):
  return model.quantize(model.encode_latents(video))[1]["ids"]


@functools.partial(nnx.jit, graph=False)
def _encode_mean(model: LARP, video):
  return DiagonalGaussian(model.encode_latents(video), interleaved=True).mode()


@functools.partial(nnx.jit, graph=False, static_argnums=2)
def _decode(model: LARP, tokens, num_patches):
  codes = (jnp.take(model.codebook(), tokens, axis=0) if model.config.regularizer == "vq"
           else tokens)
  return model.decode_latents(codes, num_patches)


@functools.partial(nnx.jit, graph=False)
def _prior_logits(model: LARP, ids):
  emb = model.codebook()
  return model._logits(jnp.take(emb, ids, axis=0), emb, train=False, rngs=None)
