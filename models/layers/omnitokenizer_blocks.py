"""OmniTokenizer's transformer blocks (OmniTokenizer/modules/attention.py, the paper's path).

A stack is a block string: 't' = PEG + global attention + GEGLU feed-forward, 'w' = 8x8 window
attention (Swin's relative-position table) + feed-forward. Global attention l2-normalises q and
k, multiplies them by learned per-dimension scales and uses a fixed logit scale of 8; spatially
it adds a 2-D RoPE or a continuous relative-position bias (an MLP over log-distances),
temporally (causal) an ALiBi bias. The official code has a second path for torch >= 2.1 (SDPA)
that drops both biases; the released weights were trained without it, so this port follows
the einsum path.

Three official quirks are kept: keys and values are projected from the un-normalised input
(only the queries pass the attention's LayerNorm); the PEG (a depthwise 3x3x3 convolution)
reads the temporal stack's [(B h w), t, D] tokens as a raw [B, t, h, w, D] reshape, so in the
temporal transformer it mixes a scrambled neighbourhood; and its "causal" padding pads that
scrambled time axis (so the first frame's tokens are not independent of later frames).

Layouts: spatial stacks see [(B t), (h w), D], temporal stacks [(B h w), t, D]; both get the
video shape (B, t, h, w). Norms without a bias are the official LayerNorm whose beta is a zero
buffer. Attribute names follow the PyTorch state dict (see zoo/convert/omnitokenizer.py).
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.transformer import layer_norm

LOGIT_SCALE = 8.0  # Attention(scale=8): q and k are unit vectors times learned scales


def _dense(cin, cout, names, *, rngs, dtype, bias=False):
  return nnx.Linear(cin, cout, use_bias=bias, dtype=dtype, rngs=rngs,
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


def gamma_norm(width, *, rngs, dtype):
  """The official LayerNorm: a learned gamma and a zero (buffer) beta, eps 1e-5."""
  return nnx.LayerNorm(width, epsilon=1e-5, use_bias=False, dtype=dtype,
                       use_fast_variance=False, rngs=rngs, scale_metadata=axes("norm"))


def _l2(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=None)
def rope_angles(dim_head: int, h: int, w: int, theta: float = 10000.0) -> np.ndarray:
  """[h*w, dim_head/2] rotation angles: pair 2f turns with the column, pair 2f+1 with the
  row, at frequency theta^(-4f/dim_head) (precompute_freqs_cis_2d on a square grid, where
  x = n % side and y = n // side; here x and y are the true column and row)."""
  freqs = 1.0 / theta ** (np.arange(0, dim_head, 4)[:dim_head // 4].astype(np.float32)
                          / dim_head)
  rows, cols = np.divmod(np.arange(h * w), w)
  x = np.outer(cols, freqs).astype(np.float32)
  y = np.outer(rows, freqs).astype(np.float32)
  return np.stack([x, y], axis=-1).reshape(h * w, -1)


def apply_rope(t, angles):
  """t [B, N, H, D] with consecutive (even, odd) pairs as complex numbers, rotated."""
  pairs = t.astype(jnp.float32).reshape(*t.shape[:-1], -1, 2)
  cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
  re, im = pairs[..., 0], pairs[..., 1]
  out = jnp.stack([re * cos - im * sin, re * sin + im * cos], axis=-1)
  return out.reshape(t.shape).astype(t.dtype)


def alibi_slopes(heads: int) -> np.ndarray:
  """ALiBi's per-head slopes (the geometric series, interleaved for non-powers of two)."""
  def power_of_2(n):
    start = 2 ** (-2 ** -(math.log2(n) - 3))
    return [start * start ** i for i in range(n)]
  if math.log2(heads).is_integer():
    return np.asarray(power_of_2(heads), np.float32)
  closest = 2 ** math.floor(math.log2(heads))
  return np.asarray(power_of_2(closest) + power_of_2(2 * closest)[0::2][:heads - closest],
                    np.float32)


def alibi_bias(heads: int, length: int) -> np.ndarray:
  """[heads, length, length]: -|i - j| * slope."""
  pos = np.arange(length)
  return -np.abs(pos[None, :] - pos[:, None])[None].astype(np.float32) * alibi_slopes(
      heads)[:, None, None]


@functools.lru_cache(maxsize=None)
def relative_offsets(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
  """The (2h-1)(2w-1) distinct (dy, dx) offsets between cells of an h x w grid, and for every
  pair of cells (row-major) the index of its offset: [N, N]."""
  dy, dx = np.meshgrid(np.arange(-(h - 1), h), np.arange(-(w - 1), w), indexing="ij")
  offsets = np.stack([dy, dx], -1).reshape(-1, 2).astype(np.float32)
  rows, cols = np.divmod(np.arange(h * w), w)
  index = ((rows[:, None] - rows[None, :] + h - 1) * (2 * w - 1)
           + cols[:, None] - cols[None, :] + w - 1)
  return offsets, index


class ContinuousPositionBias(nnx.Module):
  """An MLP (2 -> dim -> dim -> heads, leaky ReLU 0.1) over signed log-distances. It runs on
  the distinct offsets and is gathered to [heads, N, N]: the same numbers as running it on all
  N^2 pairs, without the [N^2, dim] activation."""

  def __init__(self, dim, heads, *, rngs, dtype):
    self.net = nnx.List([_dense(2, dim, (None, "mlp"), rngs=rngs, dtype=dtype, bias=True),
                         _dense(dim, dim, ("mlp", "mlp"), rngs=rngs, dtype=dtype, bias=True),
                         _dense(dim, heads, ("mlp", None), rngs=rngs, dtype=dtype, bias=True)])

  def __call__(self, h: int, w: int):
    offsets, index = relative_offsets(h, w)
    x = jnp.asarray(np.sign(offsets) * np.log(np.abs(offsets) + 1.0))
    for i, layer in enumerate(self.net):
      x = layer(x)
      if i < len(self.net) - 1:
        x = jax.nn.leaky_relu(x, 0.1)
    return jnp.take(x, jnp.asarray(index), axis=0).transpose(2, 0, 1)


class Attention(nnx.Module):

  def __init__(self, dim, *, heads, dim_head, causal, spatial_pos, rngs, dtype):
    self.heads, self.causal, self.spatial_pos = heads, causal, spatial_pos
    inner = heads * dim_head
    self.norm = gamma_norm(dim, rngs=rngs, dtype=dtype)
    self.to_q = _dense(dim, inner, ("embed", "heads"), rngs=rngs, dtype=dtype)
    self.to_kv = _dense(dim, 2 * inner, ("embed", "kv"), rngs=rngs, dtype=dtype)
    self.q_scale = nnx.Param(jnp.ones((dim_head,), jnp.float32), **axes(None))
    self.k_scale = nnx.Param(jnp.ones((dim_head,), jnp.float32), **axes(None))
    self.to_out = _dense(inner, dim, ("heads", "embed"), rngs=rngs, dtype=dtype)
    # spatial_pos: "rope", "rel" or None (temporal stacks: no spatial position term).
    self.spatial_rel_pos_bias = (ContinuousPositionBias(dim, heads, rngs=rngs, dtype=dtype)
                                 if spatial_pos == "rel" else None)

  def __call__(self, x, *, grid=None):
    """x [B, N, D]; `grid` (h, w) for a spatial stack, None for a temporal one."""
    b, n, _ = x.shape
    # Keys and values come from the un-normalised input, as in the official forward (its
    # kv_input is taken before the norm); only the queries see the LayerNorm.
    k, v = (t.reshape(b, n, self.heads, -1) for t in jnp.split(self.to_kv(x), 2, axis=-1))
    q = self.to_q(self.norm(x)).reshape(b, n, self.heads, -1)
    if grid is not None and self.spatial_pos == "rope":
      angles = jnp.asarray(rope_angles(q.shape[-1], *grid))
      q, k = apply_rope(q, angles), apply_rope(k, angles)
    q = _l2(q) * self.q_scale[...].astype(q.dtype)
    k = _l2(k) * self.k_scale[...].astype(k.dtype)
    bias = None
    if grid is not None and self.spatial_rel_pos_bias is not None:
      bias = self.spatial_rel_pos_bias(*grid)[None]
    if self.causal:
      bias = jnp.asarray(alibi_bias(self.heads, n))[None]
    out = dot_product_attention(q, k, v, scale=LOGIT_SCALE, causal=self.causal, bias=bias)
    return self.to_out(out.reshape(b, n, -1))


class WindowAttention(nnx.Module):
  """Swin W-MSA without shift: attention inside non-overlapping s x s windows, plus a learned
  bias per relative offset (`relative_position_bias_table`)."""

  def __init__(self, dim, *, heads, window, rngs, dtype):
    self.heads, self.window = heads, window
    self.norm = gamma_norm(dim, rngs=rngs, dtype=dtype)
    self.relative_position_bias_table = nnx.Param(
        0.02 * jax.random.truncated_normal(rngs.params(), -2.0, 2.0,
                                           ((2 * window - 1) ** 2, heads), jnp.float32),
        **axes(None, None))
    self.qkv = _dense(dim, 3 * dim, ("embed", "qkv"), rngs=rngs, dtype=dtype)
    self.proj = _dense(dim, dim, ("heads", "embed"), rngs=rngs, dtype=dtype, bias=True)

  def __call__(self, x, *, grid):
    bt, n, d = x.shape
    h, w = grid
    s = self.window
    x = self.norm(x).reshape(bt, h // s, s, w // s, s, d).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, s * s, d)
    q, k, v = (t.reshape(x.shape[0], s * s, self.heads, -1)
               for t in jnp.split(self.qkv(x), 3, axis=-1))
    index = relative_offsets(s, s)[1]
    bias = jnp.take(self.relative_position_bias_table[...], jnp.asarray(index), axis=0)
    out = dot_product_attention(q, k, v, bias=bias.transpose(2, 0, 1)[None].astype(q.dtype))
    out = self.proj(out.reshape(x.shape[0], s * s, d))
    out = out.reshape(bt, h // s, w // s, s, s, d).transpose(0, 1, 3, 2, 4, 5)
    return out.reshape(bt, n, d)


class PEG(nnx.Module):
  """Positional encoding generator: a depthwise 3x3x3 convolution (with bias) over the tokens
  read as [B, t, h, w, D], zero-padded; `causal` pads two steps before in time and none after.
  Written as 27 shifted products: a plain elementwise sum on every backend."""

  def __init__(self, dim, *, causal, rngs, dtype):
    self.causal, self.dtype = causal, dtype
    bound = 1.0 / math.sqrt(27)  # torch's Conv3d init: fan_in = 1 * 3 * 3 * 3
    self.dsconv_kernel = nnx.Param(jax.random.uniform(
        rngs.params(), (3, 3, 3, dim), jnp.float32, -bound, bound), **axes(None, None, None,
                                                                           "embed"))
    self.dsconv_bias = nnx.Param(jax.random.uniform(
        rngs.params(), (dim,), jnp.float32, -bound, bound), **axes("embed"))

  def __call__(self, x, shape):
    v = x.reshape(*shape, x.shape[-1])  # the official raw reshape (see the module docstring)
    frames = (2, 0) if self.causal else (1, 1)
    v = jnp.pad(v, ((0, 0), frames, (1, 1), (1, 1), (0, 0)))
    t, h, w = shape[1:]
    kernel = self.dsconv_kernel[...].astype(v.dtype)
    out = self.dsconv_bias[...].astype(v.dtype)
    for dt in range(3):
      for dh in range(3):
        for dw in range(3):
          out = out + v[:, dt:dt + t, dh:dh + h, dw:dw + w] * kernel[dt, dh, dw]
    return out.reshape(x.shape)


class FeedForward(nnx.Module):
  """LayerNorm -> Linear(dim, 2 * inner) -> GEGLU (x * gelu(gate)) -> Linear(inner, dim)."""

  def __init__(self, dim, mult, *, rngs, dtype):
    inner = int(mult * (2 / 3) * dim)
    self.norm = layer_norm(dim, rngs=rngs, dtype=dtype)
    self.proj_in = _dense(dim, 2 * inner, ("embed", "mlp"), rngs=rngs, dtype=dtype)
    self.proj_out = _dense(inner, dim, ("mlp", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x):
    x, gate = jnp.split(self.proj_in(self.norm(x)), 2, axis=-1)
    return self.proj_out(x * jax.nn.gelu(gate, approximate=False))


class Block(nnx.Module):

  def __init__(self, kind, dim, *, heads, dim_head, ff_mult, causal, causal_peg, spatial_pos,
               window, rngs, dtype):
    if kind not in ("t", "w"):
      raise ValueError(f"block kind {kind!r}: the zoo builds 't' (global) and 'w' (window)")
    self.kind = kind
    if kind == "t":
      self.peg = PEG(dim, causal=causal_peg, rngs=rngs, dtype=dtype)
      self.attn = Attention(dim, heads=heads, dim_head=dim_head, causal=causal,
                            spatial_pos=spatial_pos, rngs=rngs, dtype=dtype)
    else:
      self.peg = None
      self.attn = WindowAttention(dim, heads=heads, window=window, rngs=rngs, dtype=dtype)
    self.ff = FeedForward(dim, ff_mult, rngs=rngs, dtype=dtype)

  def __call__(self, x, shape, spatial: bool):
    grid = shape[2:] if spatial else None
    if self.peg is not None:
      x = self.peg(x, shape) + x
    x = self.attn(x, grid=grid) + x
    return self.ff(x) + x


class Transformer(nnx.Module):
  """Blocks from a block string, then the output norm."""

  def __init__(self, dim, block: str, *, heads, dim_head, ff_mult, causal=False,
               causal_peg=True, spatial_pos="rope", window=8, remat=False, rngs, dtype=None):
    self.remat = remat
    self.layers = nnx.List([
        Block(kind, dim, heads=heads, dim_head=dim_head, ff_mult=ff_mult, causal=causal,
              causal_peg=causal_peg, spatial_pos=spatial_pos, window=window, rngs=rngs,
              dtype=dtype) for kind in block])
    self.norm_out = gamma_norm(dim, rngs=rngs, dtype=dtype)

  def __call__(self, x, shape: tuple[int, int, int, int], *, spatial: bool):
    def apply(layer, h):
      return layer(h, shape, spatial)
    if self.remat:
      apply = nnx.remat(apply)
    for layer in self.layers:
      x = apply(layer, x)
    return self.norm_out(x)
