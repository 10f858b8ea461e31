"""GPSToken (xtudbxk/GPSToken, NeurIPS 2025): an image as N 2D Gaussians with texture features.

Encoder (per 256 x 256 tile): conv 3x3 + two taming ResNet blocks (128 ch) -> RoIAlign 8x8 of
each region of the entropy-driven initialisation (`gpstoken_init`) -> 1x1 conv to the token
width. Tokens start as a learned embedding + MLP(initial Gaussian); each of the attention
blocks adds Linear(64 -> 1) of its token's RoI features, then self-attention and an MLP
(pre-LN, 8 heads, exact GELU). Heads: Linear -> 5 deltas added in logit space to the initial
Gaussian (sigmoid for sigma, 2 sigmoid - 1 for rho, x, y) and Linear -> the feature.

Decoder: the tokens are splatted additively onto a 64 x 64 feature grid
(`pallas_kernels.gaussian_splat`), and a taming-style CNN (no encoder-side attention, one
mid-block attention) upsamples it 4x to pixels, with the resolution-aware GroupNorm.

Larger images: tiles are encoded separately and their tokens merged into one canvas
(sigma / n, centres moved into their tile; tiles row-major, each tile's tokens contiguous).
The canvas is decoded in one pass with tiled normalisation, or, as the official inference does
for L256, tile by tile.

Tokens: [B, T * N, 5 + C] float, (sigma_x, sigma_y, rho, x, y, features...). Images NHWC in
[0, 1]; the official model works in [-1, 1].
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.image import gpstoken_init
from models.image.kl_vae import Upsample  # nearest x2 + 3x3 conv, as taming's
from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.roi_align import roi_align
from models.layers.tiled_norm import TiledGroupNorm, from_tiles, to_tiles
from models.layers.transformer import MultiheadAttention, layer_norm
from pallas_kernels.gaussian_splat import gaussian_splat

GROUPNORM_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class GPSTokenConfig:
  num_gaussians: int = 128  # gps_num, per tile
  feature_dim: int = 16  # gps_c
  width: int = 512  # gpsenc_c
  depth: int = 30  # gpsenc_n
  num_heads: int = 8
  roi_size: int = 8  # rois
  cond_channels: int = 128
  render_size: int = 64  # gps_rs (square)
  dmax: float = 3.0  # gps_dmax
  init_weight: float = 2.5  # gps_adaptive_w
  init_min_size: int = 8
  tile_size: int = 256  # the official loader's tile
  decoder_channels: int = 128  # ch
  decoder_mult: tuple[int, ...] = (1, 2, 4)
  decoder_res_blocks: int = 2
  norm_groups: int = 32
  # The official inference decodes L256 tile by tile and the others in one tiled pass.
  decode_tiles_separately: bool = False

  def __post_init__(self):
    object.__setattr__(self, "decoder_mult", tuple(self.decoder_mult))
    up = 2 ** (len(self.decoder_mult) - 1)
    if self.render_size * up != self.tile_size:
      raise ValueError(f"render_size {self.render_size} x {up} (decoder upsampling) must equal "
                       f"tile_size {self.tile_size}")
    if self.width % self.num_heads:
      raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")

  @property
  def token_dim(self) -> int:
    return 5 + self.feature_dim

  @property
  def image_size(self) -> int:
    """The training crop: one tile, as the official trainer."""
    return self.tile_size


def _conv(cin, cout, kernel, *, rngs, dtype=None):
  return nnx.Conv(cin, cout, (kernel, kernel), padding="SAME", dtype=dtype, rngs=rngs,
                  kernel_metadata=axes(None, None, "conv_in", "conv_out"),
                  bias_metadata=axes("conv_out"))


def _dense(cin, cout, *, rngs, dtype=None, names=("embed", "mlp")):
  return nnx.Linear(cin, cout, dtype=dtype, rngs=rngs, kernel_metadata=axes(*names),
                    bias_metadata=axes(names[1]))


class GroupNorm(nnx.Module):
  """torch GroupNorm(32, eps 1e-6) in float32."""

  def __init__(self, channels, groups, *, rngs):
    self.norm = nnx.GroupNorm(channels, num_groups=groups, epsilon=GROUPNORM_EPS,
                              use_fast_variance=False, dtype=jnp.float32, rngs=rngs,
                              scale_metadata=axes("norm"), bias_metadata=axes("norm"))

  def __call__(self, x, tiles=1):
    del tiles
    return self.norm(x.astype(jnp.float32)).astype(x.dtype)


class ResnetBlock(nnx.Module):
  """taming ResnetBlock: norm -> swish -> conv, twice, plus the (1x1 `nin_shortcut`) input."""

  def __init__(self, cin, cout, groups, *, tiled, rngs, dtype=None):
    norm = TiledGroupNorm if tiled else GroupNorm
    self.norm1 = norm(cin, groups, rngs=rngs)
    self.conv1 = _conv(cin, cout, 3, rngs=rngs, dtype=dtype)
    self.norm2 = norm(cout, groups, rngs=rngs)
    self.conv2 = _conv(cout, cout, 3, rngs=rngs, dtype=dtype)
    self.nin_shortcut = _conv(cin, cout, 1, rngs=rngs, dtype=dtype) if cin != cout else None

  def __call__(self, x, tiles=1):
    h = self.conv1(jax.nn.silu(self.norm1(x, tiles)))
    h = self.conv2(jax.nn.silu(self.norm2(h, tiles)))
    return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class SpatialAttention(nnx.Module):
  """taming AttnBlock: one head over h*w positions, q/k/v/proj_out as 1x1 convs."""

  def __init__(self, channels, groups, *, rngs, dtype=None):
    self.norm = GroupNorm(channels, groups, rngs=rngs)
    conv = functools.partial(_conv, channels, channels, 1, rngs=rngs, dtype=dtype)
    self.q, self.k, self.v, self.proj_out = conv(), conv(), conv(), conv()

  def __call__(self, x):
    b, h, w, c = x.shape
    t = self.norm(x)
    q, k, v = (f(t).reshape(b, h * w, 1, c) for f in (self.q, self.k, self.v))
    out = dot_product_attention(q, k, v).reshape(b, h, w, c)
    return x + self.proj_out(out)


class UpLevel(nnx.Module):
  def __init__(self, cin, cout, num_blocks, groups, upsample, *, rngs, dtype=None):
    self.block = nnx.List([ResnetBlock(cin if i == 0 else cout, cout, groups, tiled=True,
                                       rngs=rngs, dtype=dtype) for i in range(num_blocks)])
    self.upsample = Upsample(cout, rngs=rngs, dtype=dtype) if upsample else None


class Decoder(nnx.Module):
  """taming `DecoderNP`: grid [B, h, w, C] -> pixels [B, 4h, 4w, 3] in [-1, 1] (unclipped)."""

  def __init__(self, cfg: GPSTokenConfig, *, rngs, dtype=None):
    ch, mult, g = cfg.decoder_channels, cfg.decoder_mult, cfg.norm_groups
    top = ch * mult[-1]
    self.conv_in = _conv(cfg.feature_dim, top, 3, rngs=rngs, dtype=dtype)
    self.mid_block_1 = ResnetBlock(top, top, g, tiled=True, rngs=rngs, dtype=dtype)
    self.mid_attn_1 = SpatialAttention(top, g, rngs=rngs, dtype=dtype)
    self.mid_block_2 = ResnetBlock(top, top, g, tiled=True, rngs=rngs, dtype=dtype)
    levels, cin = [], top
    for i in reversed(range(len(mult))):  # built from the lowest resolution up
      levels.append(UpLevel(cin, ch * mult[i], cfg.decoder_res_blocks + 1, g, i != 0,
                            rngs=rngs, dtype=dtype))
      cin = ch * mult[i]
    self.up = nnx.List(levels[::-1])  # up[0] is the highest resolution, as in taming
    self.norm_out = TiledGroupNorm(cin, g, rngs=rngs)
    self.conv_out = _conv(cin, 3, 3, rngs=rngs, dtype=dtype)

  def __call__(self, z, tiles: int = 1):
    h = self.mid_block_1(self.conv_in(z), tiles)
    h = from_tiles(self.mid_attn_1(to_tiles(h, tiles)), tiles)  # attention within tiles
    h = self.mid_block_2(h, tiles)
    for level in reversed(self.up):
      for block in level.block:
        h = block(h, tiles)
      if level.upsample is not None:
        h = level.upsample(h)
    # The official DecoderNP calls norm_out without _np: one set of statistics per canvas.
    return self.conv_out(jax.nn.silu(self.norm_out(h)))


class AttnBlock(nnx.Module):
  """GPSToken's conditional block: x += roimlp(RoI features); x += attn(ln1 x); x += mlp(ln2 x)."""

  def __init__(self, width, num_heads, roi_cells, *, rngs, dtype=None):
    self.roimlp = _dense(roi_cells, 1, rngs=rngs, dtype=dtype, names=(None, None))
    self.ln1 = layer_norm(width, rngs=rngs, dtype=dtype)
    self.attn1 = MultiheadAttention(width, num_heads, rngs=rngs, dtype=dtype)
    self.ln2 = layer_norm(width, rngs=rngs, dtype=dtype)
    self.mlp_0 = _dense(width, 4 * width, rngs=rngs, dtype=dtype)
    self.mlp_2 = _dense(4 * width, width, rngs=rngs, dtype=dtype, names=("mlp", "embed"))

  def __call__(self, x, roi_features):
    # roi_features [B, N, cells, width]: Linear over the cells of each channel.
    x = x + self.roimlp(jnp.swapaxes(roi_features, -1, -2))[..., 0]
    x = x + self.attn1(self.ln1(x))
    return x + self.mlp_2(jax.nn.gelu(self.mlp_0(self.ln2(x)), approximate=False))


def _logit(p):
  return -jnp.log(1.0 / p - 1.0)


def merge_tiles(tokens, tiles: int):
  """[B * n * n, N, D] tile tokens (tiles row-major per image) -> [B, n * n * N, D] canvas."""
  if tiles == 1:
    return tokens
  bt, n, d = tokens.shape
  t = tokens.reshape(bt // tiles ** 2, tiles, tiles, n, d)
  row = jnp.arange(tiles, dtype=tokens.dtype)[None, :, None, None]
  col = jnp.arange(tiles, dtype=tokens.dtype)[None, None, :, None]
  geo = jnp.stack([t[..., 0] / tiles, t[..., 1] / tiles, t[..., 2],
                   -1.0 + (2.0 * col + t[..., 3] + 1.0) / tiles,
                   -1.0 + (2.0 * row + t[..., 4] + 1.0) / tiles], axis=-1)
  return jnp.concatenate([geo, t[..., 5:]], axis=-1).reshape(bt // tiles ** 2, -1, d)


def split_tiles(tokens, tiles: int):
  """Inverse of `merge_tiles`: [B, n * n * N, D] -> [B * n * n, N, D] in tile coordinates."""
  if tiles == 1:
    return tokens
  b, total, d = tokens.shape
  t = tokens.reshape(b, tiles, tiles, total // tiles ** 2, d)
  row = jnp.arange(tiles, dtype=tokens.dtype)[None, :, None, None]
  col = jnp.arange(tiles, dtype=tokens.dtype)[None, None, :, None]
  geo = jnp.stack([t[..., 0] * tiles, t[..., 1] * tiles, t[..., 2],
                   (t[..., 3] + 1.0) * tiles - 1.0 - 2.0 * col,
                   (t[..., 4] + 1.0) * tiles - 1.0 - 2.0 * row], axis=-1)
  return jnp.concatenate([geo, t[..., 5:]], axis=-1).reshape(b * tiles ** 2, -1, d)


class GPSToken(nnx.Module):
  """`encode(images) -> tokens`, `decode(tokens) -> images`, `render(tokens) -> grid`."""

  has_gaussian_tokens = True  # evaluators draw the tokens' ellipses (zoo.evals.gaussian_overlay)

  def __init__(self, cfg: GPSTokenConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    c = cfg.cond_channels
    self.preprocess_conv = _conv(3, c, 3, rngs=rngs, dtype=dtype)
    self.preprocess_blocks = nnx.List([
        ResnetBlock(c, c, cfg.norm_groups, tiled=False, rngs=rngs, dtype=dtype)
        for _ in range(2)])
    self.roialign_layer = _conv(c, cfg.width, 1, rngs=rngs, dtype=dtype)
    self.gps_embed = nnx.Param(
        jax.random.normal(rngs.params(), (1, cfg.width), jnp.float32), **axes(None, "embed"))
    self.gps_embed_layer_0 = _dense(5, cfg.width, rngs=rngs, dtype=dtype, names=(None, "embed"))
    self.gps_embed_layer_2 = _dense(cfg.width, cfg.width, rngs=rngs, dtype=dtype,
                                    names=("embed", "embed"))
    self.attnblocks = nnx.List([
        AttnBlock(cfg.width, cfg.num_heads, cfg.roi_size ** 2, rngs=rngs, dtype=dtype)
        for _ in range(cfg.depth)])
    self.to_gps_0 = nnx.Linear(cfg.width, 5, kernel_init=nnx.initializers.zeros,
                               bias_init=nnx.initializers.zeros, dtype=dtype, rngs=rngs,
                               kernel_metadata=axes("embed", None), bias_metadata=axes(None))
    self.to_gps_1 = _dense(cfg.width, cfg.feature_dim, rngs=rngs, dtype=dtype,
                           names=("embed", None))
    self.decoder = Decoder(cfg, rngs=rngs, dtype=dtype)

  # -- pieces, traceable -------------------------------------------------------------------
  def encode_tiles(self, tiles_pm1, gaussians, rois):
    """Tiles [T, s, s, 3] in [-1, 1], initial Gaussians [T, N, 5], RoIs [T, N, 4] (normalised)
    -> tile tokens [T, N, 5 + C] in tile coordinates."""
    cfg = self.config
    x = self.preprocess_conv(tiles_pm1)
    for block in self.preprocess_blocks:
      x = block(x)
    _, h, w, _ = x.shape
    scale = jnp.array([w - 1, h - 1, w - 1, h - 1], jnp.float32) / 2.0
    boxes = (rois.astype(jnp.float32) + 1.0) * scale
    cells = self.roialign_layer(roi_align(x, boxes, cfg.roi_size))  # [T, N, P, P, width]
    t, n = cells.shape[:2]
    cells = cells.reshape(t, n, cfg.roi_size ** 2, cfg.width)
    init = gaussians.astype(jnp.float32)
    embed = self.gps_embed_layer_2(jax.nn.gelu(self.gps_embed_layer_0(init),
                                               approximate=False))
    tokens = self.gps_embed.get_value()[None] + embed
    for block in self.attnblocks:
      tokens = block(tokens, cells)
    delta = self.to_gps_0(tokens).astype(jnp.float32)
    geometry = jnp.concatenate([
        jax.nn.sigmoid(_logit(init[..., :2]) + delta[..., :2]),
        2.0 * jax.nn.sigmoid(_logit((1.0 + init[..., 2:5]) / 2.0) + delta[..., 2:5]) - 1.0],
        axis=-1)
    return jnp.concatenate([geometry, self.to_gps_1(tokens).astype(jnp.float32)], axis=-1)

  def render_canvas(self, tokens, tiles: int):
    size = self.config.render_size * tiles
    return gaussian_splat(tokens[..., :5], tokens[..., 5:], size, size, dmax=self.config.dmax)

  def decode_canvas(self, tokens, tiles: int, separately: bool):
    """Canvas tokens -> pixels in [-1, 1] (unclipped)."""
    if separately and tiles > 1:
      tile_tokens = split_tiles(tokens, tiles)
      return from_tiles(self.decoder(self.render_canvas(tile_tokens, 1), 1), tiles)
    return self.decoder(self.render_canvas(tokens, tiles), tiles)

  # -- public API --------------------------------------------------------------------------
  def initial_gaussians(self, images):
    """Host-side entropy initialisation of [B, H, W, 3] images in [0, 1]: ([B, T*N, 5],
    [B, T*N, 4]), each tile's in its own coordinates (the official loader's output)."""
    out = [self.host_inputs()(im) for im in np.asarray(images)]
    return (np.stack([o["gaussians"] for o in out]), np.stack([o["rois"] for o in out]))

  def encode(self, images, gaussians=None, rois=None):
    """images [B, H, W, 3] in [0, 1], H and W multiples of the tile size (256) -> tokens
    [B, T * N, 5 + C] on one canvas. `gaussians`/`rois` as `initial_gaussians` returns them
    (computed here when not given, e.g. precomputed by the data pipeline)."""
    cfg = self.config
    tiles = check_gpstoken_images(images, cfg.tile_size)
    if gaussians is None or rois is None:
      gaussians, rois = self._initial_gaussians_eagerly(images)
    b = images.shape[0]
    want = (b, tiles * tiles * cfg.num_gaussians)
    if gaussians.shape != want + (5,) or rois.shape != want + (4,):
      raise ValueError(f"gaussians and rois must be {want + (5,)} and {want + (4,)} for "
                       f"{images.shape[1]}x{images.shape[2]} images; got {gaussians.shape} "
                       f"and {rois.shape}")
    return _encode(self, images, jnp.asarray(gaussians), jnp.asarray(rois), tiles)

  def decode(self, tokens, *, separately: bool | None = None, clip: bool = True):
    """Canvas tokens [B, T * N, 5 + C] -> images [B, H, W, 3] in [0, 1].

    `separately` (default: the config's, True for L256 as the official inference) decodes
    each 256 tile on its own instead of one pass with tiled normalisation.
    """
    tiles = self._check_tokens(tokens)
    if separately is None:
      separately = self.config.decode_tiles_separately
    out = _decode(self, jnp.asarray(tokens), tiles, bool(separately))
    return jnp.clip(out, 0.0, 1.0) if clip else out

  def render(self, tokens):
    """Canvas tokens -> the splatted feature grid [B, 64 n, 64 n, C] the decoder sees."""
    tiles = self._check_tokens(tokens)
    return _render(self, jnp.asarray(tokens), tiles)

  def __call__(self, images, *, train: bool = True, rngs=None, gaussians=None, rois=None):
    """Training forward on [0, 1] images (sides multiples of the tile): {'recon', 'tokens'}.

    `gaussians` / `rois` come precomputed from the data pipeline (`host_inputs`); outside a
    traced step they are computed here when absent.
    """
    del train, rngs
    cfg = self.config
    tiles = images.shape[1] // cfg.tile_size
    if gaussians is None or rois is None:
      gaussians, rois = self._initial_gaussians_eagerly(images)
    x = to_tiles(images.astype(jnp.float32) * 2.0 - 1.0, tiles)
    tokens = merge_tiles(self.encode_tiles(
        x, gaussians.reshape(-1, cfg.num_gaussians, 5),
        rois.reshape(-1, cfg.num_gaussians, 4)), tiles)
    recon = self.decode_canvas(tokens, tiles, cfg.decode_tiles_separately)
    return {"recon": (recon + 1.0) * 0.5, "tokens": tokens}

  def _initial_gaussians_eagerly(self, images):
    # A host callback inside a sharded step would stall the other devices' collectives for
    # as long as the initialisation runs (a deadlock on small CPU hosts): compute it first.
    if isinstance(images, jax.core.Tracer):
      raise ValueError("GPSToken's entropy initialisation runs on the host: under jit, pass "
                       "gaussians= and rois= (per-example: `model.host_inputs()`, which the "
                       "zoo's data pipeline and evaluators apply)")
    return tuple(jnp.asarray(a) for a in self.initial_gaussians(images))

  def host_inputs(self):
    """The per-example transform that precomputes `__call__`'s inputs in data workers."""
    return InitialGaussians(self.config)

  def _check_tokens(self, tokens) -> int:
    cfg = self.config
    shape = getattr(tokens, "shape", None)
    if shape is None or len(shape) != 3 or shape[-1] != cfg.token_dim:
      raise ValueError(f"tokens must be [B, T * {cfg.num_gaussians}, {cfg.token_dim}] "
                       f"(sigma_x, sigma_y, rho, x, y, {cfg.feature_dim} features); got {shape}")
    tiles = int(round(np.sqrt(shape[1] / cfg.num_gaussians)))
    if tiles < 1 or tiles * tiles * cfg.num_gaussians != shape[1]:
      raise ValueError(f"{shape[1]} tokens are not n * n tiles of {cfg.num_gaussians}")
    if not jnp.issubdtype(tokens.dtype, jnp.floating):
      raise TypeError(f"tokens are continuous and must be float; got {tokens.dtype}")
    if not isinstance(tokens, jax.core.Tracer):
      t = np.asarray(tokens)
      if not np.all(np.isfinite(t)):
        raise ValueError("tokens contain NaN or Inf")
      if np.any(t[..., :2] <= 0):
        raise ValueError(f"tokens must have sigma > 0; smallest is {t[..., :2].min():.4g}")
      if np.any(np.abs(t[..., 2]) >= 1):
        raise ValueError(f"tokens must have |rho| < 1; largest is {np.abs(t[..., 2]).max():.4g}")
    return tiles


@dataclasses.dataclass(frozen=True)
class InitialGaussians:
  """image [H, W, 3] in [0, 1] -> {'gaussians': [T*N, 5], 'rois': [T*N, 4]} float32.

  Picklable, for grain workers (zoo.data.make_image_dataset's `extra_inputs`); the stacked
  batch version is `zoo.data.host_inputs_batch`."""
  config: GPSTokenConfig

  def __call__(self, image) -> dict:
    cfg = self.config
    g, r = gpstoken_init.initial_gaussians_for_image(
        np.asarray(image), cfg.num_gaussians, tile=cfg.tile_size, min_size=cfg.init_min_size,
        weight=cfg.init_weight)
    return {"gaussians": g.astype(np.float32), "rois": r.astype(np.float32)}


def check_gpstoken_images(x, tile: int) -> int:
  """NHWC float in [0, 1] with H == W a multiple of `tile`; returns tiles per side."""
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f"images must be NHWC [B, H, W, 3]; got shape {shape}")
  if shape[1] % tile or shape[2] % tile or shape[1] != shape[2] or not shape[1]:
    raise ValueError(f"images must be square with a side that is a multiple of {tile} (GPSToken "
                     f"encodes {tile} x {tile} tiles); got {shape[1]}x{shape[2]}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"images must be float in [0, 1]; got dtype {x.dtype} (divide uint8 by 255)")
  if isinstance(x, jax.core.Tracer):  # values are checked where they are concrete
    return shape[1] // tile
  xp = np if isinstance(x, np.ndarray) else jnp
  if not bool(xp.all(xp.isfinite(x))):
    raise ValueError("images contain NaN or Inf")
  lo, hi = float(xp.min(x)), float(xp.max(x))
  if lo < 0.0 or hi > 1.0:
    raise ValueError(f"images must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")
  return shape[1] // tile


@functools.partial(nnx.jit, static_argnums=4)
def _encode(model, images, gaussians, rois, tiles):
  cfg = model.config
  x = to_tiles(images.astype(jnp.float32) * 2.0 - 1.0, tiles)
  n = cfg.num_gaussians
  g = gaussians.reshape(-1, n, 5)
  r = rois.reshape(-1, n, 4)
  return merge_tiles(model.encode_tiles(x, g, r), tiles)


@functools.partial(nnx.jit, static_argnums=(2, 3))
def _decode(model, tokens, tiles, separately):
  return (model.decode_canvas(tokens, tiles, separately).astype(jnp.float32) + 1.0) * 0.5


@functools.partial(nnx.jit, static_argnums=2)
def _render(model, tokens, tiles):
  return model.render_canvas(tokens, tiles)
