"""FlexTok's transformer pieces (apple/ml-flextok `model/layers`), written for NNX.

Conventions of the official layers that these reproduce:
  * norms are LayerNorms without scale or bias, computed in float32 (eps 1e-5);
  * attention has separate bias-free `wq`/`wk`/`wv`/`proj`, per-head QK-norm (the same
    affine-free float32 LayerNorm over head_dim) and the muP logit scale 8 / head_dim
    (= 1/sqrt(64) at head_dim 64);
  * the MLP is SwiGLU: fc2(silu(fc1(x)) * fc3(x)) with hidden int(2 * int(dim * ratio) / 3);
  * the AdaLN-zero block reads one modulation vector per sub-sequence (patches, registers):
    `adaLN_modulation` is SiLU -> Linear(dim, expansion * 6 * dim), split first by
    sub-sequence, then into (gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp).
Attribute names follow the PyTorch state-dict names so the converter stays one table.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes

NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which Fp32LayerNorm keeps.


def plain_norm(x, eps: float = NORM_EPS):
  """LayerNorm without affine parameters, in float32, cast back to x's dtype."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(xf - mean), axis=-1, keepdims=True)
  return ((xf - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def modulate(x, shift, scale):
  return x * (1.0 + scale) + shift


def xavier_linear(cin, cout, *, rngs, dtype, names, bias=True, zero=False):
  init = nnx.initializers.zeros_init() if zero else nnx.initializers.xavier_uniform()
  return nnx.Linear(cin, cout, use_bias=bias, dtype=dtype, rngs=rngs, kernel_init=init,
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


def swiglu_hidden(dim: int, mlp_ratio: float) -> int:
  """GatedMlp's hidden width: 2/3 of int(dim * ratio), truncated (1152 -> 3072, 1792 -> 4778)."""
  return int(2 * int(dim * mlp_ratio) / 3)


class Attention(nnx.Module):
  """Self-attention with QK-norm and the muP scale; `mask` [B, 1|H, S, S], True keeps."""

  def __init__(self, dim: int, head_dim: int, *, rngs: nnx.Rngs, dtype=None):
    if dim % head_dim:
      raise ValueError(f"dim {dim} is not divisible by head_dim {head_dim}")
    self.num_heads, self.head_dim = dim // head_dim, head_dim
    lin = lambda names: xavier_linear(dim, dim, rngs=rngs, dtype=dtype, names=names, bias=False)
    self.wq, self.wk, self.wv = lin(("embed", "qkv")), lin(("embed", "qkv")), lin(("embed", "qkv"))
    self.proj = lin(("heads", "embed"))

  def __call__(self, x, *, mask=None):
    b, s, d = x.shape
    split = lambda t: t.reshape(b, s, self.num_heads, self.head_dim)
    q, k, v = split(self.wq(x)), split(self.wk(x)), split(self.wv(x))
    q, k = plain_norm(q), plain_norm(k)
    out = dot_product_attention(q, k, v, mask=mask, scale=8.0 / self.head_dim)
    return self.proj(out.reshape(b, s, d))


class GatedMlp(nnx.Module):
  """SwiGLU: fc2(silu(fc1(x)) * fc3(x)), no biases."""

  def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
    self.fc1 = xavier_linear(dim, hidden, rngs=rngs, dtype=dtype, names=("embed", "mlp"),
                             bias=False)
    self.fc3 = xavier_linear(dim, hidden, rngs=rngs, dtype=dtype, names=("embed", "mlp"),
                             bias=False)
    self.fc2 = xavier_linear(hidden, dim, rngs=rngs, dtype=dtype, names=("mlp", "embed"),
                             bias=False)

  def __call__(self, x):
    return self.fc2(jax.nn.silu(self.fc1(x)) * self.fc3(x))


class Block(nnx.Module):
  """Pre-norm block (FlexBlock): x + attn(norm(x)), x + mlp(norm(x))."""

  def __init__(self, dim: int, head_dim: int, mlp_ratio: float, *, rngs: nnx.Rngs, dtype=None):
    self.attn = Attention(dim, head_dim, rngs=rngs, dtype=dtype)
    self.mlp = GatedMlp(dim, swiglu_hidden(dim, mlp_ratio), rngs=rngs, dtype=dtype)

  def __call__(self, x, *, mask=None, cond=None):
    del cond
    x = x + self.attn(plain_norm(x), mask=mask)
    return x + self.mlp(plain_norm(x))


class AdaLNBlock(nnx.Module):
  """FlexBlockAdaLN: AdaLN-zero with one modulation per sub-sequence.

  `cond` is (emb [B, dim], segment [S] int32: which sub-sequence each position belongs to).
  """

  def __init__(self, dim: int, head_dim: int, mlp_ratio: float, expansion: int, *,
               rngs: nnx.Rngs, dtype=None):
    self.dim, self.expansion = dim, expansion
    self.attn = Attention(dim, head_dim, rngs=rngs, dtype=dtype)
    self.mlp = GatedMlp(dim, swiglu_hidden(dim, mlp_ratio), rngs=rngs, dtype=dtype)
    # Index 1 like the official nn.Sequential(SiLU, Linear); zero init (adaLN-zero).
    self.adaLN_modulation = nnx.Dict({"1": xavier_linear(
        dim, expansion * 6 * dim, rngs=rngs, dtype=dtype, names=("embed", "mlp"), zero=True)})

  def __call__(self, x, *, mask=None, cond=None):
    emb, segment = cond
    b, s, d = x.shape
    mod = self.adaLN_modulation["1"](jax.nn.silu(emb)).reshape(b, self.expansion, 6 * d)
    mod = jnp.take(mod, segment, axis=1)  # [B, S, 6D]: each position its sub-sequence's row
    gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp = jnp.split(mod, 6, axis=-1)
    x = x + gate_msa * self.attn(modulate(plain_norm(x), shift_msa, scale_msa), mask=mask)
    return x + gate_mlp * self.mlp(modulate(plain_norm(x), shift_mlp, scale_mlp))


def run_blocks(blocks, x, *, mask=None, cond=None, remat: bool = False):
  """Applies blocks in order; `remat` recomputes activations in the backward pass."""
  def apply(block, h, mask, cond):
    return block(h, mask=mask, cond=cond)
  if remat:
    apply = nnx.remat(apply)
  for block in blocks:
    x = apply(block, x, mask, cond)
  return x


def timestep_embedding(t, dim: int, *, max_timestep: float, max_period: float = 256.0):
  """FlexTok's TimestepEmbedder features: [cos(t f), sin(t f)],
  f_i = (1000 / max_timestep) * exp(-ln(max_period) * i / (dim // 2)); note max_period 256."""
  half = dim // 2
  freqs = (1000.0 / max_timestep) * jnp.exp(
      -jnp.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = t.astype(jnp.float32)[:, None] * freqs[None]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.concatenate([emb, jnp.zeros_like(emb[:, :1])], axis=-1)
  return emb
