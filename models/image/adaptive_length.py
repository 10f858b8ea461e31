"""Adaptive length in one pass: a KARL-style halting head on a frozen flexible tokenizer.

KARL ("Single-pass Adaptive Image Tokenization for Minimum Program Search", arXiv 2507.07995,
ShivamDuggal4/karl `kolmogorov_tokenizers/karl_vqgan.py`) conditions its encoder on a token
budget T and a desired reconstruction error eps and predicts, per token, a halting probability
(LayerNorm -> Linear(w, 512) -> tanh -> Linear(512, 1) -> sigmoid; tokens with p > 0.75 are
masked out of the decoder). It is trained Upside-Down-RL style: the error a run reached becomes
the condition of a second run, which must halt after the tokens that reached it.

Here, unlike KARL, the tokenizer is NOT trained with the head: the base (a flexible-length
tokenizer such as One-D-Piece, whose every prefix decodes) is frozen and only the head learns.
For each training image the base's whole error curve err(k), k = 1..K, is computed in one
compiled decode, so the targets need no second rollout: with T ~ U{1..K} and eps drawn
log-uniformly (or, as KARL's relabelling, equal to an error the image reaches), the length that
suffices is k* = the smallest k <= T with err(k) <= eps (T if none), and token i (0-based)
should halt iff i >= k*. Inference: length = min(T, first i with p_i > threshold), at least 1.

Errors are per-image mean squared error of the clipped reconstruction in [0, 1] ("mse"; KARL
uses the per-image mean absolute error, "l1"). Differences from KARL, and why:
  * halting is a prefix (the first halting token ends the sequence), because a One-D-Piece
    decoder is trained on prefixes; KARL masks each halted token wherever it is;
  * eps enters as sinusoidal features of log(eps) over the trained range, not KARL's 19 learned
    bins (0.005 .. 0.38), so any eps in the range is a valid condition;
  * with a frozen base the tokens do not depend on T, so for tokens i < T the target does not
    either; the budget embedding only teaches the head to halt at i >= T (and encode caps the
    length at T regardless).
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.image.inputs import check_images
from models.layers.axes import axes
from models.layers.transformer import ResidualAttentionBlock, layer_norm, run_blocks

ERRORS = ("mse", "l1")
_FREQUENCIES = 8  # sinusoidal features of the normalised log target error


@dataclasses.dataclass(frozen=True)
class HaltingHeadConfig:
  width: int = 128
  num_layers: int = 1  # transformer layers over the K tokens: halting depends on the image
  num_heads: int = 4
  mlp_hidden: int = 512  # KARL's halting MLP: Linear(w, 512) -> tanh -> Linear(512, 1)
  threshold: float = 0.75  # KARL halts tokens with p > 0.75
  error: str = "mse"  # per-image error of the base's reconstruction: "mse" or "l1" (KARL)
  min_target_error: float = 1e-3  # the range eps is trained on (and accepted at inference)
  max_target_error: float = 1e-1
  hindsight_fraction: float = 0.5  # share of eps set to an error the image reaches (KARL)
  # (T, eps) pairs drawn per training image: the K decodes of the error curve dominate the
  # step's cost, while the head is cheap, so every curve serves several conditions.
  conditions_per_image: int = 4
  # The error curve: err at lengths 1, s, 2s, ..., K (s = curve_stride), each k between grid
  # points taking the error of the grid point below it (an upper bound where err falls with
  # k, so the targets err on the side of more tokens); decoded `lengths_per_decode` at a time.
  curve_stride: int = 1
  lengths_per_decode: int = 0  # 0: every grid length in one batched decode
  eval_target_error: float = 1e-2  # what the training forward's eval branch aims for

  def __post_init__(self):
    if self.error not in ERRORS:
      raise ValueError(f"error must be one of {ERRORS}, got {self.error!r}")
    if not 0.0 < self.min_target_error < self.max_target_error:
      raise ValueError(f"need 0 < min_target_error < max_target_error; got "
                       f"{self.min_target_error}, {self.max_target_error}")
    if not self.min_target_error <= self.eval_target_error <= self.max_target_error:
      raise ValueError(f"eval_target_error {self.eval_target_error} is outside the trained range "
                       f"[{self.min_target_error}, {self.max_target_error}]")
    if not 0.0 < self.threshold < 1.0:
      raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
    if not 0.0 <= self.hindsight_fraction <= 1.0:
      raise ValueError(f"hindsight_fraction must be in [0, 1], got {self.hindsight_fraction}")
    if self.curve_stride < 1 or self.lengths_per_decode < 0:
      raise ValueError(f"curve_stride must be >= 1 and lengths_per_decode >= 0; got "
                       f"{self.curve_stride}, {self.lengths_per_decode}")
    if self.conditions_per_image < 1:
      raise ValueError(f"conditions_per_image must be >= 1, got {self.conditions_per_image}")
    if self.width % self.num_heads:
      raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")


@dataclasses.dataclass(frozen=True)
class AdaptiveLengthConfig:
  """`base` is the flexible tokenizer's config (a TiTokConfig with tail_token_drop)."""
  base: object
  head: HaltingHeadConfig = HaltingHeadConfig()

  def __post_init__(self):
    if not getattr(self.base, "tail_token_drop", False):
      raise ValueError("the halting head needs a flexible-length base whose every prefix "
                       "decodes (One-D-Piece: a TiTokConfig with tail_token_drop=True)")
    if getattr(self.base, "quantize_mode", "vq") != "vq" or self.base.decodes_to_logits:
      raise ValueError("the base must be a VQ tokenizer that decodes to pixels")

  @property
  def image_size(self) -> int:
    return self.base.image_size

  @property
  def num_latent_tokens(self) -> int:
    return self.base.num_latent_tokens


def halting_targets(errors, max_tokens, target_error):
  """errors [B, K] (err at lengths 1..K), max_tokens int [B], target_error [B] -> (halt [B, K]
  float {0, 1}, k* int32 [B]): k* = smallest k <= T with err(k) <= eps, else T."""
  k = errors.shape[1]
  lengths = jnp.arange(1, k + 1)[None, :]
  ok = (errors <= target_error[:, None]) & (lengths <= max_tokens[:, None])
  first = jnp.where(ok, lengths, k + 1).min(axis=1)
  k_star = jnp.minimum(first, max_tokens).astype(jnp.int32)
  halt = (jnp.arange(k)[None, :] >= k_star[:, None]).astype(jnp.float32)
  return halt, k_star


def lengths_from_probs(probs, max_tokens, threshold):
  """probs [B, K] -> int32 [B]: min(T, first i with p_i > threshold), at least 1."""
  k = probs.shape[1]
  first = jnp.where(probs > threshold, jnp.arange(k)[None, :], k).min(axis=1)
  return jnp.clip(jnp.minimum(first, max_tokens), 1, k).astype(jnp.int32)


class HaltingHead(nnx.Module):
  """Per-token halting logits from the frozen encoder's latents, the budget and log(eps)."""

  def __init__(self, cfg: HaltingHeadConfig, *, num_tokens: int, token_dim: int,
               rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    w = cfg.width
    init = nnx.initializers.normal(0.02)
    dense = functools.partial(nnx.Linear, dtype=dtype, rngs=rngs, kernel_init=init)
    self.token_in = dense(token_dim, w, kernel_metadata=axes(None, "embed"),
                          bias_metadata=axes("embed"))
    self.error_in = dense(2 * _FREQUENCIES + 1, w, kernel_metadata=axes(None, "embed"),
                          bias_metadata=axes("embed"))
    # Budget T in 1..K: a learned row per value (KARL gives its encoder T latent tokens).
    self.budget_embedding = nnx.Param(0.02 * jax.random.normal(rngs.params(), (num_tokens, w)),
                                      **axes(None, "embed"))
    self.positional_embedding = nnx.Param(
        0.02 * jax.random.normal(rngs.params(), (num_tokens, w)), **axes(None, "embed"))
    self.blocks = nnx.List([ResidualAttentionBlock(w, cfg.num_heads, rngs=rngs, dtype=dtype)
                            for _ in range(cfg.num_layers)])
    self.ln_halt = layer_norm(w, rngs=rngs, dtype=dtype)
    self.mlp_in = dense(w, cfg.mlp_hidden, kernel_metadata=axes("embed", "mlp"),
                        bias_metadata=axes("mlp"))
    self.mlp_out = dense(cfg.mlp_hidden, 1, kernel_metadata=axes("mlp", None),
                         bias_metadata=axes(None))

  def error_features(self, target_error):
    """log(eps) mapped to [-1, 1] over the trained range, with sinusoids (a smooth condition;
    KARL instead rounds eps up to one of 19 bins with a learned embedding each)."""
    lo, hi = math.log(self.config.min_target_error), math.log(self.config.max_target_error)
    u = 2.0 * (jnp.log(target_error.astype(jnp.float32)) - lo) / (hi - lo) - 1.0
    f = jnp.pi * jnp.arange(1, _FREQUENCIES + 1, dtype=jnp.float32)
    return jnp.concatenate([u[:, None], jnp.sin(u[:, None] * f), jnp.cos(u[:, None] * f)], -1)

  def __call__(self, latents, max_tokens, target_error):
    """latents [B, K, C], max_tokens int [B] in 1..K, target_error [B] -> logits [B, K]."""
    x = self.token_in(latents) + self.positional_embedding[...]
    cond = self.budget_embedding[...][max_tokens - 1] + self.error_in(
        self.error_features(target_error))
    x = x + cond[:, None, :].astype(x.dtype)
    x = run_blocks(self.blocks, x)
    h = jnp.tanh(self.mlp_in(self.ln_halt(x)))
    return self.mlp_out(h)[..., 0].astype(jnp.float32)


class AdaptiveLengthTokenizer(nnx.Module):
  """A frozen flexible tokenizer (`base`) + a halting head: one pass picks each image's length.

  `encode(images, max_tokens=T, target_error=eps) -> (ids [B, K], lengths [B])`; decode the
  first lengths[b] ids with `decode(ids, num_tokens=lengths)`. The base is not trained with the
  head (train with config.frozen = ("base",)); its tokens do not depend on T or eps.
  """

  def __init__(self, cfg: AdaptiveLengthConfig, *, rngs: nnx.Rngs, dtype=None):
    from models.image.titok import TiTok  # the flexible base; only TiTok-family for now
    self.config = cfg
    self.base = TiTok(cfg.base, rngs=rngs, dtype=dtype)
    self.halting_head = HaltingHead(cfg.head, num_tokens=cfg.base.num_latent_tokens,
                                    token_dim=cfg.base.token_size, rngs=rngs, dtype=dtype)

  # -- pieces, traceable -------------------------------------------------------------------
  def error_curve(self, images, z_q):
    """Per-image error at every length k = 1..K [B, K]: one compiled, batched decode per chunk
    of lengths (config.head.curve_stride / lengths_per_decode)."""
    cfg, k = self.config.head, z_q.shape[1]
    grid = np.unique(np.concatenate([[1], np.arange(cfg.curve_stride, k + 1, cfg.curve_stride),
                                     [k]])).astype(np.int32)
    images = images.astype(jnp.float32)

    def errors_at(length):
      lengths = jnp.full((z_q.shape[0],), length, jnp.int32)
      recon = jnp.clip(self.base.decode_latents(z_q, lengths).astype(jnp.float32), 0.0, 1.0)
      diff = recon - images
      return jnp.mean(jnp.abs(diff) if cfg.error == "l1" else diff ** 2, axis=(1, 2, 3))

    chunk = cfg.lengths_per_decode or len(grid)
    on_grid = jax.lax.map(errors_at, jnp.asarray(grid), batch_size=chunk).T  # [B, len(grid)]
    below = np.searchsorted(grid, np.arange(1, k + 1), side="right") - 1  # last grid <= k
    return on_grid[:, below]

  def halting_probs(self, images, max_tokens, target_error):
    """(quantized latents [B, K, C], ids [B, K], halting probabilities [B, K])."""
    z = jax.lax.stop_gradient(self.base.encode_latents(images))
    z_q, aux = self.base.quantize(z)
    logits = self.halting_head(z, max_tokens, target_error)
    return jax.lax.stop_gradient(z_q), aux["ids"], jax.nn.sigmoid(logits)

  # -- public API --------------------------------------------------------------------------
  def encode(self, images, *, max_tokens=None, target_error=None):
    """images [B, H, W, 3] in [0, 1] -> (ids int32 [B, K], lengths int32 [B]).

    max_tokens: int or int [B] in [1, K], the budget T (default K); target_error: float or
    [B] in the trained range, the wanted per-image error (config.head.error; default
    config.head.eval_target_error). Ids past lengths[b] are the base's and may be ignored.
    One compiled program for every T and eps.
    """
    check_images(images, self.config.image_size)
    b = images.shape[0]
    max_tokens = self.config.num_latent_tokens if max_tokens is None else max_tokens
    target_error = self.config.head.eval_target_error if target_error is None else target_error
    max_tokens, target_error = self._check_conditions(b, max_tokens, target_error)
    return _encode(self, images, max_tokens, target_error)

  def decode(self, ids, *, num_tokens=None, clip: bool = True):
    """The base's decode: ids [B, k] -> images; `num_tokens` int [B] (e.g. encode's lengths)."""
    return self.base.decode(ids, num_tokens=num_tokens, clip=clip)

  def __call__(self, images, *, train: bool = True, rngs: nnx.Rngs | None = None):
    """Training: {'losses': {'halting': BCE}, 'stats'}; eval: {'recon', 'lengths'} at the
    lengths chosen for T = K and eps = config.head.eval_target_error."""
    cfg, b, k = self.config.head, images.shape[0], self.config.num_latent_tokens
    if not train:
      max_tokens = jnp.full((b,), k, jnp.int32)
      target_error = jnp.full((b,), cfg.eval_target_error, jnp.float32)
      z_q, _, probs = self.halting_probs(images, max_tokens, target_error)
      lengths = lengths_from_probs(probs, max_tokens, cfg.threshold)
      return {"recon": self.base.decode_latents(z_q, lengths), "lengths": lengths}
    if rngs is None:
      raise ValueError("the training forward samples budgets and target errors: pass "
                       "rngs=nnx.Rngs(sample=...)")
    z = jax.lax.stop_gradient(self.base.encode_latents(images))
    z_q, _ = self.base.quantize(z)
    errors = jax.lax.stop_gradient(self.error_curve(images, z_q))
    bce, stats = halting_loss(self.halting_head, z, errors, rngs.sample())
    return {"losses": {"halting": bce}, "stats": stats}

  def _check_conditions(self, b, max_tokens, target_error):
    k, cfg = self.config.num_latent_tokens, self.config.head
    t = np.asarray(max_tokens)
    if not np.issubdtype(t.dtype, np.integer):
      raise TypeError(f"max_tokens must be an integer or integers [{b}]; got dtype {t.dtype}")
    if t.ndim == 0:
      t = np.full((b,), t)
    if t.shape != (b,):
      raise ValueError(f"max_tokens must be a scalar or of shape ({b},); got shape {t.shape}")
    if t.size and (t.min() < 1 or t.max() > k):
      raise ValueError(f"max_tokens must be in [1, {k}]; got [{t.min()}, {t.max()}]")
    e = np.asarray(target_error)
    if not np.issubdtype(e.dtype, np.floating) and not np.issubdtype(e.dtype, np.integer):
      raise TypeError(f"target_error must be a float or floats [{b}]; got dtype {e.dtype}")
    e = e.astype(np.float32)
    if e.ndim == 0:
      e = np.full((b,), e)
    if e.shape != (b,):
      raise ValueError(f"target_error must be a scalar or of shape ({b},); got shape {e.shape}")
    lo, hi = cfg.min_target_error, cfg.max_target_error
    if e.size and not (np.all(np.isfinite(e)) and e.min() >= lo * (1 - 1e-6)
                       and e.max() <= hi * (1 + 1e-6)):
      raise ValueError(f"target_error ({cfg.error}) must be in the trained range [{lo:g}, {hi:g}]"
                       f"; got [{e.min():g}, {e.max():g}]")
    return t.astype(np.int32), e


def halting_loss(head: HaltingHead, latents, errors, key):
  """(BCE, stats) of the head on latents [B, K, C] with the base's error curves [B, K]:
  conditions_per_image (T, eps) pairs per image, targets from `halting_targets`."""
  cfg, k = head.config, errors.shape[1]
  key_t, key_e, key_h, key_j = jax.random.split(key, 4)
  r = cfg.conditions_per_image
  latents, errors = jnp.repeat(latents, r, axis=0), jnp.repeat(errors, r, axis=0)
  b = errors.shape[0]
  max_tokens = jax.random.randint(key_t, (b,), 1, k + 1)
  target_error = sample_target_errors(key_e, key_h, key_j, errors, cfg)
  halt, k_star = halting_targets(errors, max_tokens, target_error)
  logits = head(latents, max_tokens, target_error)
  predicted = lengths_from_probs(jax.nn.sigmoid(logits), max_tokens, cfg.threshold)
  as_float = lambda x: x.astype(jnp.float32)
  return jnp.mean(sigmoid_bce(logits, halt)), {
      "target_length": jnp.mean(as_float(k_star)),
      "predicted_length": jnp.mean(as_float(predicted)),
      "length_exact": jnp.mean(as_float(predicted == k_star)),
      "halt_accuracy": jnp.mean(as_float((logits > 0) == (halt > 0.5))),
      "error_full_length": jnp.mean(errors[:, -1])}


def sigmoid_bce(logits, labels):
  """Binary cross-entropy with logits, stable for large |logits|."""
  return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def sample_target_errors(key_e, key_h, key_j, errors, cfg: HaltingHeadConfig):
  """eps per image: log-uniform over the trained range, or (hindsight_fraction of the time)
  the error the image reaches at a random length, as KARL relabels a run with its own error."""
  b, k = errors.shape
  lo, hi = math.log(cfg.min_target_error), math.log(cfg.max_target_error)
  uniform = jnp.exp(jax.random.uniform(key_e, (b,), minval=lo, maxval=hi))
  j = jax.random.randint(key_j, (b,), 0, k)
  reached = jnp.clip(jnp.take_along_axis(errors, j[:, None], axis=1)[:, 0],
                     cfg.min_target_error, cfg.max_target_error)
  use_reached = jax.random.uniform(key_h, (b,)) < cfg.hindsight_fraction
  return jnp.where(use_reached, reached, uniform)


@functools.partial(nnx.jit, graph=False)
def _encode(model: AdaptiveLengthTokenizer, images, max_tokens, target_error):
  _, ids, probs = model.halting_probs(images, max_tokens, target_error)
  return ids.astype(jnp.int32), lengths_from_probs(probs, max_tokens,
                                                   model.config.head.threshold)
