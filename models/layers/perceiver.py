"""The Perceiver-style blocks of 3DShape2VecSet (after lucidrains' perceiver-pytorch).

`PreNorm` LayerNorms the input (and, for cross-attention, the context with its own norm)
before `fn`; `Attention` has bias-free `to_q` and packed k|v `to_kv` projections and a
biased `to_out`; `FeedForward` is Linear -> GEGLU (value, gate halves; value * exact-GELU(gate))
-> Linear. LayerNorm eps 1e-5 (torch's default). Attribute names follow the official
state-dict names so the converter table reads one to one.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.transformer import layer_norm


def _dense(cin, cout, names, *, bias=True, rngs, dtype):
  return nnx.Linear(cin, cout, use_bias=bias, dtype=dtype, rngs=rngs,
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


class Attention(nnx.Module):
  """Multi-head attention of queries [B, S, query_dim] over a context [B, T, context_dim]."""

  def __init__(self, query_dim: int, context_dim: int | None = None, *, heads: int,
               dim_head: int, rngs: nnx.Rngs, dtype=None):
    context_dim = context_dim or query_dim
    self.heads, self.dim_head = heads, dim_head
    inner = heads * dim_head
    self.to_q = _dense(query_dim, inner, ("embed", "qkv"), bias=False, rngs=rngs, dtype=dtype)
    self.to_kv = _dense(context_dim, 2 * inner, ("embed", "qkv"), bias=False, rngs=rngs,
                        dtype=dtype)
    self.to_out = _dense(inner, query_dim, ("heads", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x, context=None):
    context = x if context is None else context
    k, v = jnp.split(self.to_kv(context), 2, axis=-1)
    split = lambda t: t.reshape(*t.shape[:2], self.heads, self.dim_head)
    out = dot_product_attention(split(self.to_q(x)), split(k), split(v))
    return self.to_out(out.reshape(*x.shape[:2], self.heads * self.dim_head))


class FeedForward(nnx.Module):
  """net_0 (dim -> 2 x mult x dim) -> GEGLU -> net_2 (mult x dim -> dim)."""

  def __init__(self, dim: int, *, mult: int = 4, rngs: nnx.Rngs, dtype=None):
    self.net_0 = _dense(dim, 2 * mult * dim, ("embed", "mlp"), rngs=rngs, dtype=dtype)
    self.net_2 = _dense(mult * dim, dim, ("mlp", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x):
    value, gate = jnp.split(self.net_0(x), 2, axis=-1)
    return self.net_2(value * jax.nn.gelu(gate, approximate=False))


class PreNorm(nnx.Module):
  """fn(norm(x), context=norm_context(context)); the context norm only for cross-attention."""

  def __init__(self, dim: int, fn: nnx.Module, *, context_dim: int | None = None,
               rngs: nnx.Rngs, dtype=None):
    self.norm = layer_norm(dim, rngs=rngs, dtype=dtype)
    self.norm_context = (layer_norm(context_dim, rngs=rngs, dtype=dtype)
                         if context_dim is not None else None)
    self.fn = fn

  def __call__(self, x, context=None):
    if self.norm_context is not None:
      return self.fn(self.norm(x), self.norm_context(context))
    return self.fn(self.norm(x))
