"""timm's ViT block (timm.models.vision_transformer.Block) with its defaults, as LARP uses it.

Pre-LN LayerNorm (eps 1e-6, the default of Block's timm LayerNorm in timm 1.0.31, what LARP's
unpinned requirements install today; older timm releases defaulted to torch's 1e-5), packed q|k|v `qkv` projection without bias, `proj` with bias, exact-GELU MLP
`fc1` -> `fc2`, no layer scale. Attribute names follow timm's state-dict names.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.transformer import layer_norm

TIMM_NORM_EPS = 1e-6


def _dense(cin, cout, names, *, bias=True, rngs, dtype):
  return nnx.Linear(cin, cout, use_bias=bias, dtype=dtype, rngs=rngs,
                    kernel_init=nnx.initializers.xavier_uniform(),
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


class Attention(nnx.Module):
  def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = False, rngs: nnx.Rngs,
               dtype=None):
    if dim % num_heads:
      raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}")
    self.num_heads = num_heads
    self.qkv = _dense(dim, 3 * dim, ("embed", "qkv"), bias=qkv_bias, rngs=rngs, dtype=dtype)
    self.proj = _dense(dim, dim, ("heads", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x, *, mask=None):
    b, s, d = x.shape
    q, k, v = (t.reshape(b, s, self.num_heads, d // self.num_heads)
               for t in jnp.split(self.qkv(x), 3, axis=-1))
    return self.proj(dot_product_attention(q, k, v, mask=mask).reshape(b, s, d))


class Mlp(nnx.Module):
  def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
    self.fc1 = _dense(dim, hidden, ("embed", "mlp"), rngs=rngs, dtype=dtype)
    self.fc2 = _dense(hidden, dim, ("mlp", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x):
    return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class Block(nnx.Module):
  """x + attn(norm1(x)), then x + mlp(norm2(x))."""

  def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float = 4.0,
               norm_eps: float = TIMM_NORM_EPS, rngs: nnx.Rngs, dtype=None):
    self.norm1 = layer_norm(dim, rngs=rngs, dtype=dtype, eps=norm_eps)
    self.attn = Attention(dim, num_heads, rngs=rngs, dtype=dtype)
    self.norm2 = layer_norm(dim, rngs=rngs, dtype=dtype, eps=norm_eps)
    self.mlp = Mlp(dim, int(dim * mlp_ratio), rngs=rngs, dtype=dtype)

  def __call__(self, x, *, mask=None):
    x = x + self.attn(self.norm1(x), mask=mask)
    return x + self.mlp(self.norm2(x))
