"""GPT-C, LARP's autoregressive prior over continuous code vectors (LARP models/gptc.py).

A GPT over the 16-d l2-normalised codes: `input_proj` to the width, a learned position
embedding, pre-LN causal blocks (separate `key`/`query`/`value`/`proj` with biases, exact-GELU
MLP `mlp.0` -> `mlp.2`, torch LayerNorm eps 1e-5), `ln_f`, and `head` back to the code width.
`ar_predict` is teacher-forced next-code prediction: position i predicts code i + 1 from codes
<= i; the first position is passed through. Dropout (0.1 by default) applies to the embedding
sum and the residual branches in training; the one attention entry point of the zoo has no
attention-probability dropout, so that third dropout of the original is left out.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.transformer import layer_norm
from models.quantizers.vq import l2_normalize


@dataclasses.dataclass(frozen=True)
class GPTCConfig:
  num_layers: int = 12
  num_heads: int = 6
  width: int = 384
  code_dim: int = 16
  max_seq_len: int = 1024
  dropout: float = 0.1
  l2_normalized: bool = True


# The official sizes (models/gptc.py GPTC_models): name -> (layers, heads, width).
SIZES = {"gptc-L": (24, 16, 1024), "gptc-B": (12, 12, 768), "gptc-M": (12, 8, 512),
         "gptc-S": (12, 6, 384), "gptc-XS": (6, 6, 384), "gptc-XXS": (6, 4, 256)}
# The zoo's own size for CPU tests and the tiny recipe (no official checkpoint has it).
TINY_SIZES = {"gptc-tiny": (2, 2, 64)}


def gptc_config(name: str, **kwargs) -> GPTCConfig:
  sizes = SIZES | TINY_SIZES
  if name not in sizes:
    raise ValueError(f"unknown GPT-C size {name!r}; choose one of {sorted(sizes)}")
  layers, heads, width = sizes[name]
  return GPTCConfig(num_layers=layers, num_heads=heads, width=width, **kwargs)


def _dense(cin, cout, names, *, rngs, dtype):
  return nnx.Linear(cin, cout, dtype=dtype, rngs=rngs,
                    kernel_init=nnx.initializers.normal(0.02),
                    kernel_metadata=axes(*names), bias_metadata=axes(names[1]))


class CausalSelfAttention(nnx.Module):
  def __init__(self, cfg: GPTCConfig, *, rngs: nnx.Rngs, dtype=None):
    w = cfg.width
    self.num_heads = cfg.num_heads
    self.key = _dense(w, w, ("embed", "qkv"), rngs=rngs, dtype=dtype)
    self.query = _dense(w, w, ("embed", "qkv"), rngs=rngs, dtype=dtype)
    self.value = _dense(w, w, ("embed", "qkv"), rngs=rngs, dtype=dtype)
    self.proj = _dense(w, w, ("heads", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x):
    b, s, w = x.shape
    split = lambda t: t.reshape(b, s, self.num_heads, w // self.num_heads)
    out = dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                causal=True)
    return self.proj(out.reshape(b, s, w))


class Mlp(nnx.Module):
  def __init__(self, width: int, *, rngs: nnx.Rngs, dtype=None):
    self.fc1 = _dense(width, 4 * width, ("embed", "mlp"), rngs=rngs, dtype=dtype)
    self.fc2 = _dense(4 * width, width, ("mlp", "embed"), rngs=rngs, dtype=dtype)

  def __call__(self, x):
    return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class Block(nnx.Module):
  def __init__(self, cfg: GPTCConfig, *, rngs: nnx.Rngs, dtype=None):
    self.ln1 = layer_norm(cfg.width, rngs=rngs, dtype=dtype)
    self.attn = CausalSelfAttention(cfg, rngs=rngs, dtype=dtype)
    self.ln2 = layer_norm(cfg.width, rngs=rngs, dtype=dtype)
    self.mlp = Mlp(cfg.width, rngs=rngs, dtype=dtype)

  def __call__(self, x, *, drop):
    x = x + drop(self.attn(self.ln1(x)))
    return x + drop(self.mlp(self.ln2(x)))


def dropout(x, rate: float, key):
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


class GPTC(nnx.Module):

  def __init__(self, cfg: GPTCConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    self.input_proj = _dense(cfg.code_dim, cfg.width, ("code_dim", "embed"), rngs=rngs,
                             dtype=dtype)
    self.pos_emb = nnx.Param(0.02 * jax.random.normal(
        rngs.params(), (1, cfg.max_seq_len, cfg.width), jnp.float32), **axes(None, None, "embed"))
    self.blocks = nnx.List([Block(cfg, rngs=rngs, dtype=dtype) for _ in range(cfg.num_layers)])
    self.ln_f = layer_norm(cfg.width, rngs=rngs, dtype=dtype)
    self.head = _dense(cfg.width, cfg.code_dim, ("embed", "code_dim"), rngs=rngs, dtype=dtype)

  def __call__(self, x, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """[B, N, code_dim] -> the predicted next codes [B, N, code_dim] (not normalised)."""
    n = x.shape[1]
    if n > self.config.max_seq_len:
      raise ValueError(f"GPT-C takes at most {self.config.max_seq_len} codes; got {n}")
    rate = self.config.dropout if train else 0.0
    if rate and rngs is None:
      raise ValueError("GPT-C's training dropout needs rngs (an nnx.Rngs with a 'sample' stream)")
    drop = (lambda t: dropout(t, rate, rngs.sample())) if rate else (lambda t: t)
    h = drop(self.input_proj(x) + self.pos_emb[:, :n].astype(x.dtype))
    for block in self.blocks:
      h = block(h, drop=drop)
    return self.head(self.ln_f(h))

  def ar_predict(self, codes, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """Teacher forcing: [B, N, D] codes -> [B, N, D], the first code then the predictions of
    codes 1..N-1 from the codes before each, l2-normalised when the prior is."""
    pred = self(codes[:, :-1], train=train, rngs=rngs)
    full = jnp.concatenate([codes[:, :1], pred.astype(codes.dtype)], axis=1)
    return l2_normalize(full) if self.config.l2_normalized else full

