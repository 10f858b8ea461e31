"""The ViT residual attention block of CLIP/open_clip, as TiTok uses it.

Pre-LN, packed q|k|v input projection (torch.nn.MultiheadAttention layout), exact GELU,
LayerNorm eps 1e-5, MLP ratio 4, no dropout. Attribute names follow the PyTorch state-dict
names so the converters stay one table.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes

TORCH_LAYERNORM_EPS = 1e-5


def layer_norm(width: int, *, rngs: nnx.Rngs, dtype=None, eps: float = TORCH_LAYERNORM_EPS):
  return nnx.LayerNorm(
      width, epsilon=eps, dtype=dtype, use_fast_variance=False, rngs=rngs,
      scale_metadata=axes("norm"), bias_metadata=axes("norm"))


class MultiheadAttention(nnx.Module):
  """Self-attention with one packed q|k|v projection (`in_proj`) and `out_proj`."""

  def __init__(self, width: int, num_heads: int, *, rngs: nnx.Rngs, dtype=None):
    if width % num_heads:
      raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
    self.num_heads = num_heads
    self.in_proj = nnx.Linear(
        width, 3 * width, dtype=dtype, rngs=rngs,
        kernel_metadata=axes("embed", "qkv"), bias_metadata=axes("qkv"))
    self.out_proj = nnx.Linear(
        width, width, dtype=dtype, rngs=rngs,
        kernel_metadata=axes("heads", "embed"), bias_metadata=axes("embed"))

  def __call__(self, x, *, mask=None):
    b, s, w = x.shape
    q, k, v = jnp.split(self.in_proj(x), 3, axis=-1)
    q, k, v = (t.reshape(b, s, self.num_heads, w // self.num_heads) for t in (q, k, v))
    out = dot_product_attention(q, k, v, mask=mask)
    return self.out_proj(out.reshape(b, s, w))


class Mlp(nnx.Module):
  """c_fc -> exact GELU -> c_proj."""

  def __init__(self, width: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
    self.c_fc = nnx.Linear(
        width, hidden, dtype=dtype, rngs=rngs,
        kernel_metadata=axes("embed", "mlp"), bias_metadata=axes("mlp"))
    self.c_proj = nnx.Linear(
        hidden, width, dtype=dtype, rngs=rngs,
        kernel_metadata=axes("mlp", "embed"), bias_metadata=axes("embed"))

  def __call__(self, x):
    return self.c_proj(jax.nn.gelu(self.c_fc(x), approximate=False))


def run_blocks(blocks, x, *, remat: bool = False, mask=None):
  """Applies the blocks in order (with an attention `mask`, True keeps a key); `remat`
  recomputes each block's activations in the backward pass instead of keeping them (less
  memory, ~1/3 more compute)."""
  def apply(block, h, m):
    return block(h, mask=m)
  if remat:
    apply = nnx.remat(apply)
  for block in blocks:
    x = apply(block, x, mask)
  return x


class ResidualAttentionBlock(nnx.Module):
  """x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

  def __init__(self, width: int, num_heads: int, *, mlp_ratio: float = 4.0,
               rngs: nnx.Rngs, dtype=None):
    self.ln_1 = layer_norm(width, rngs=rngs, dtype=dtype)
    self.attn = MultiheadAttention(width, num_heads, rngs=rngs, dtype=dtype)
    self.ln_2 = layer_norm(width, rngs=rngs, dtype=dtype)
    self.mlp = Mlp(width, int(width * mlp_ratio), rngs=rngs, dtype=dtype)

  def __call__(self, x, *, mask=None):
    x = x + self.attn(self.ln_1(x), mask=mask)
    return x + self.mlp(self.ln_2(x))
