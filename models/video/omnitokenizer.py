"""OmniTokenizer (FoundationVision/OmniTokenizer): one causal tokenizer for images and videos.

The first frame is patch-embedded on its own (8x8 patches), the rest in temporal patches of
`temporal_patch_size` frames, so an image is a one-frame video and (T - 1) must divide by the
temporal patch: 17 frames -> 1 + 4 latent frames. Each patch goes LayerNorm -> Linear ->
LayerNorm; a spatial transformer ("ttww": two global, two 8x8-window blocks) runs per latent
frame, then a causal temporal transformer per patch position (models/layers/
omnitokenizer_blocks.py). A Linear maps to the 8-d code space, the codes are l2-normalised
and quantized on VideoGPT's EMA codebook (8192 codes), or, for the VAE checkpoints, the
projection holds mean || logvar of a diagonal Gaussian. The decoder mirrors it: temporal
then spatial transformer ("tttt"), then Linear heads back to the first frame's and the
temporal patches' pixels.

Inputs are [0, 1] (the official [-0.5, 0.5] inside). Images [B, H, W, 3] give ids [B, h, w],
videos [B, T, H, W, 3] give ids [B, t, h, w]; any H, W that are multiples of the patch (and of
patch x window with window blocks) work, non-square included: positions are the true rows and
columns, where the official code assumes a square grid.
"""
import dataclasses
import functools
from typing import ClassVar

import einops
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from models.layers.omnitokenizer_blocks import Transformer
from models.layers.transformer import layer_norm
from models.quantizers.gaussian import DiagonalGaussian
from models.quantizers.restart_ema_vq import RestartEMACodebook
from models.quantizers.vq import l2_normalize
from models.video.inputs import check_videos


@dataclasses.dataclass(frozen=True)
class OmniTokenizerConfig:
  resolution: int = 256  # the training resolution (other sizes run too)
  patch_size: int = 8
  temporal_patch_size: int = 4
  width: int = 512
  heads: int = 8
  dim_head: int = 64
  ff_mult: float = 4.0
  enc_block: str = "ttww"
  dec_block: str = "tttt"
  temporal_depth: int = 4
  window_size: int = 8
  spatial_pos: str = "rope"  # "rope" or "rel" (continuous relative-position bias)
  causal_temporal: bool = True
  causal_peg: bool = True
  codebook_size: int = 8192
  codebook_dim: int = 8
  l2_code: bool = True
  use_vae: bool = False
  kl_weight: float = 1e-6
  restarts: bool = False  # the released recipe trains with --no_random_restart
  restart_threshold: float = 1.0
  remat: bool = False
  # The trainer feeds it images and clips in one stream (zoo/train/joint.py).
  joint_image_video: ClassVar[bool] = True

  def __post_init__(self):
    bad = sorted(set(self.enc_block + self.dec_block) - set("tw"))
    if bad:
      raise ValueError(f"block kinds {bad}: the zoo builds 't' (global) and 'w' (window) "
                       "blocks, as every released checkpoint uses")
    if self.spatial_pos not in ("rope", "rel"):
      raise ValueError(f"spatial_pos must be 'rope' or 'rel', got {self.spatial_pos!r}")

  @property
  def image_size(self) -> int:  # what the image evaluators resize to
    return self.resolution

  @property
  def size_multiple(self) -> int:
    windows = "w" in self.enc_block + self.dec_block
    return self.patch_size * (self.window_size if windows else 1)


class PatchEmbedding(nnx.Module):
  """Patches flattened as (c, [pt,] p1, p2) -> LayerNorm -> Linear -> LayerNorm."""

  def __init__(self, patch_dim, width, *, rngs, dtype):
    self.norm_in = layer_norm(patch_dim, rngs=rngs, dtype=dtype)
    self.proj = nnx.Linear(patch_dim, width, dtype=dtype, rngs=rngs,
                           kernel_metadata=axes("patch", "embed"), bias_metadata=axes("embed"))
    self.norm_out = layer_norm(width, rngs=rngs, dtype=dtype)

  def __call__(self, patches):
    return self.norm_out(self.proj(self.norm_in(patches)))


def _stacks(cfg: OmniTokenizerConfig, spatial_block: str, *, rngs, dtype):
  common = dict(heads=cfg.heads, dim_head=cfg.dim_head, ff_mult=cfg.ff_mult,
                causal_peg=cfg.causal_peg, window=cfg.window_size, remat=cfg.remat, rngs=rngs,
                dtype=dtype)
  spatial = Transformer(cfg.width, spatial_block, spatial_pos=cfg.spatial_pos, **common)
  temporal = Transformer(cfg.width, "t" * cfg.temporal_depth, causal=cfg.causal_temporal,
                         spatial_pos=None, **common)
  return spatial, temporal


class Encoder(nnx.Module):

  def __init__(self, cfg: OmniTokenizerConfig, *, rngs, dtype=None):
    self.cfg = cfg
    p, pt = cfg.patch_size, cfg.temporal_patch_size
    self.to_patch_emb_first_frame = PatchEmbedding(3 * p * p, cfg.width, rngs=rngs, dtype=dtype)
    self.to_patch_emb = PatchEmbedding(3 * pt * p * p, cfg.width, rngs=rngs, dtype=dtype)
    self.enc_spatial_transformer, self.enc_temporal_transformer = _stacks(
        cfg, cfg.enc_block, rngs=rngs, dtype=dtype)

  def __call__(self, video):
    """[B, T, H, W, 3] in [-0.5, 0.5] -> tokens [B, t, h, w, D]."""
    p, pt = self.cfg.patch_size, self.cfg.temporal_patch_size
    first = einops.rearrange(video[:, :1], "b t (h p1) (w p2) c -> b t h w (c p1 p2)",
                             p1=p, p2=p)
    tokens = self.to_patch_emb_first_frame(first)
    if video.shape[1] > 1:
      rest = einops.rearrange(video[:, 1:], "b (t pt) (h p1) (w p2) c -> b t h w (c pt p1 p2)",
                              pt=pt, p1=p, p2=p)
      tokens = jnp.concatenate([tokens, self.to_patch_emb(rest)], axis=1)
    shape = tokens.shape[:4]
    b, t, h, w = shape
    x = tokens.reshape(b * t, h * w, -1)
    x = self.enc_spatial_transformer(x, shape, spatial=True)
    x = einops.rearrange(x, "(b t) (h w) d -> (b h w) t d", b=b, h=h)
    x = self.enc_temporal_transformer(x, shape, spatial=False)
    return einops.rearrange(x, "(b h w) t d -> b t h w d", b=b, h=h, w=w)


class Decoder(nnx.Module):

  def __init__(self, cfg: OmniTokenizerConfig, *, rngs, dtype=None):
    self.cfg = cfg
    p, pt = cfg.patch_size, cfg.temporal_patch_size
    self.dec_spatial_transformer, self.dec_temporal_transformer = _stacks(
        cfg, cfg.dec_block, rngs=rngs, dtype=dtype)
    self.to_pixels_first_frame = nnx.Linear(
        cfg.width, 3 * p * p, dtype=dtype, rngs=rngs, kernel_metadata=axes("embed", "patch"),
        bias_metadata=axes("patch"))
    self.to_pixels = nnx.Linear(
        cfg.width, 3 * pt * p * p, dtype=dtype, rngs=rngs,
        kernel_metadata=axes("embed", "patch"), bias_metadata=axes("patch"))

  def __call__(self, tokens):
    """[B, t, h, w, D] -> video [B, 1 + (t - 1) * pt, H, W, 3] in about [-0.5, 0.5]."""
    p, pt = self.cfg.patch_size, self.cfg.temporal_patch_size
    shape = tokens.shape[:4]
    b, t, h, w = shape
    x = einops.rearrange(tokens, "b t h w d -> (b h w) t d")
    x = self.dec_temporal_transformer(x, shape, spatial=False)
    x = einops.rearrange(x, "(b h w) t d -> (b t) (h w) d", b=b, h=h, w=w)
    x = self.dec_spatial_transformer(x, shape, spatial=True)
    x = x.reshape(b, t, h, w, -1)
    video = einops.rearrange(self.to_pixels_first_frame(x[:, :1]),
                             "b t h w (c p1 p2) -> b t (h p1) (w p2) c", p1=p, p2=p)
    if t > 1:
      rest = einops.rearrange(self.to_pixels(x[:, 1:]),
                              "b t h w (c pt p1 p2) -> b (t pt) (h p1) (w p2) c",
                              pt=pt, p1=p, p2=p)
      video = jnp.concatenate([video, rest], axis=1)
    return video


class OmniTokenizer(nnx.Module):

  def __init__(self, cfg: OmniTokenizerConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    self.dtype = dtype
    self.encoder = Encoder(cfg, rngs=rngs, dtype=dtype)
    code_out = cfg.codebook_dim * (2 if cfg.use_vae else 1)
    self.pre_vq_conv = nnx.Linear(cfg.width, code_out, dtype=dtype, rngs=rngs,
                                  kernel_metadata=axes("embed", "code_dim"),
                                  bias_metadata=axes("code_dim"))
    self.post_vq_conv = nnx.Linear(cfg.codebook_dim, cfg.width, dtype=dtype, rngs=rngs,
                                   kernel_metadata=axes("code_dim", "embed"),
                                   bias_metadata=axes("embed"))
    self.codebook = (None if cfg.use_vae else RestartEMACodebook(
        cfg.codebook_size, cfg.codebook_dim, restarts=cfg.restarts,
        restart_threshold=cfg.restart_threshold, rngs=rngs))
    self.decoder = Decoder(cfg, rngs=rngs, dtype=dtype)

  # -- input checks ------------------------------------------------------------------------
  def as_video(self, x, name: str = "input"):
    """Images [B, H, W, 3] -> one-frame videos; checks layout, sizes, frames, dtype, range."""
    c = self.config
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) not in (4, 5):
      raise ValueError(f"{name} must be images [B, H, W, 3] or videos [B, T, H, W, 3]; got "
                       f"shape {shape}")
    video = x[:, None] if len(shape) == 4 else x
    check_videos(video, size_multiple=c.size_multiple, name=name)
    if (video.shape[1] - 1) % c.temporal_patch_size:
      raise ValueError(f"{name} has {video.shape[1]} frames; OmniTokenizer needs 1 + a "
                       f"multiple of {c.temporal_patch_size} (the first frame on its own, "
                       f"then temporal patches of {c.temporal_patch_size}), e.g. "
                       f"{1 + 4 * c.temporal_patch_size}")
    return video

  def _check_tokens(self, tokens):
    c = self.config
    want = "latents [B, (t,) h, w, C]" if c.use_vae else "ids [B, h, w] or [B, t, h, w]"
    ndim = getattr(tokens, "ndim", None)
    if c.use_vae:
      ok = ndim in (4, 5) and tokens.shape[-1] == c.codebook_dim
    else:
      ok = ndim in (3, 4)
    if not ok:
      raise ValueError(f"OmniTokenizer{' VAE' if c.use_vae else ''} decodes {want}; got "
                       f"{getattr(tokens, 'shape', type(tokens).__name__)}")
    if c.use_vae:
      if not jnp.issubdtype(tokens.dtype, jnp.floating):
        raise TypeError(f"VAE latents must be float; got {tokens.dtype}")
      return
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise TypeError(f"token ids must be integers; got {tokens.dtype}")
    if not isinstance(tokens, jax.core.Tracer) and tokens.size:
      lo, hi = int(jnp.min(tokens)), int(jnp.max(tokens))
      if lo < 0 or hi >= c.codebook_size:
        raise ValueError(f"token ids must be in [0, {c.codebook_size}); got [{lo}, {hi}]")

  # -- the pieces --------------------------------------------------------------------------
  def encode_latents(self, video):
    """Video [B, T, H, W, 3] in [0, 1] -> pre_vq_conv output [B, t, h, w, C or 2C], float32."""
    dtype = self.dtype or jnp.float32
    z = self.pre_vq_conv(self.encoder(video.astype(dtype) - 0.5))
    return z.astype(jnp.float32)

  def code_inputs(self, z):
    return l2_normalize(z) if self.config.l2_code else z

  def decode_latents(self, z):
    """Codes [B, t, h, w, C] -> video [B, T, H, W, 3] in about [0, 1] (not clipped)."""
    dtype = self.dtype or jnp.float32
    return self.decoder(self.post_vq_conv(z.astype(dtype))).astype(jnp.float32) + 0.5

  def posterior(self, x) -> DiagonalGaussian:
    """The VAE's posterior over latents [B, t, h, w, C] (mean || logvar on the last axis)."""
    if not self.config.use_vae:
      raise ValueError("posterior() is for the VAE checkpoints (use_vae); this is a VQ model")
    return DiagonalGaussian(self.encode_latents(self.as_video(x)))

  # -- the public API ----------------------------------------------------------------------
  def encode(self, x):
    """Images [B, H, W, 3] -> ids [B, h, w]; videos [B, T, H, W, 3] -> ids [B, t, h, w]
    (int32). VAE: the posterior mean [B, (t,) h, w, C]."""
    video = self.as_video(x)
    out = _encode(self, video)
    return out[:, 0] if x.ndim == 4 else out

  def frames_for(self, latent_frames: int) -> int:
    return 1 + (latent_frames - 1) * self.config.temporal_patch_size

  def decode(self, tokens, *, frames: int | None = None, clip: bool = True):
    """ids [B, h, w] -> images [B, H, W, 3]; ids [B, t, h, w] -> videos [B, T, H, W, 3]
    (VAE: latents with a trailing C), in [0, 1]. T = 1 + (t - 1) x the temporal patch;
    `frames`, if given, must equal it (the causal layout fixes the frame count)."""
    self._check_tokens(tokens)
    image = tokens.ndim == (4 if self.config.use_vae else 3)
    if frames is not None and frames != (1 if image else self.frames_for(tokens.shape[1])):
      raise ValueError(f"these tokens decode to {1 if image else self.frames_for(tokens.shape[1])}"
                       f" frames, not {frames}")
    out = _decode(self, tokens[:, None] if image else tokens)
    out = jnp.clip(out, 0.0, 1.0) if clip else out
    return out[:, 0] if image else out

  def __call__(self, x, *, train: bool = True, rngs: nnx.Rngs | None = None):
    """Training forward: `recon` in x's layout, the commitment (VQ) or `kl` (VAE) terms."""
    video = self.as_video(x)
    if train and rngs is None:
      raise ValueError("OmniTokenizer's training forward needs rngs=nnx.Rngs(sample=key) "
                       "(codebook initialisation, or the VAE's sample)")
    z = self.encode_latents(video)
    out = {"losses": {}, "stats": {}}
    if self.config.use_vae:
      posterior = DiagonalGaussian(z)
      codes = posterior.sample(rngs.sample()) if train else posterior.mode()
      out["kl"] = posterior.kl()
    else:
      codes, aux = self.codebook(self.code_inputs(z), train=train, rngs=rngs)
      out.update(aux)
    recon = self.decode_latents(codes)
    out["recon"] = recon[:, 0] if x.ndim == 4 else recon
    return out


@functools.partial(nnx.jit, graph=False)
def _encode(model: OmniTokenizer, video):
  z = model.encode_latents(video)
  if model.config.use_vae:
    return DiagonalGaussian(z).mode()
  return model.codebook.search(model.code_inputs(z).reshape(-1, z.shape[-1])).reshape(
      z.shape[:-1]).astype(jnp.int32)


@functools.partial(nnx.jit, graph=False)
def _decode(model: OmniTokenizer, tokens):
  codes = tokens if model.config.use_vae else model.codebook.lookup(tokens)
  return model.decode_latents(codes)
