"""`flash_attention`: checks the inputs once, then picks an implementation.

impl (argument, else `pallas_kernels.impl` zoo default, else ZOO_KERNEL_IMPL):
  None:        by platform and shape: TPU -> the Pallas TPU kernel when S or T reaches one
               block (128), else XLA (a tiny problem is all padding); GPU -> cuDNN when its
               constraints hold (`cudnn_supports`), else XLA (the Pallas GPU kernel has not
               run on a GPU yet, so it is opt-in); CPU -> XLA.
  "xla":       `attention_reference` (materialises the [B, H, S, T] logits).
  "pallas":    the platform's compiled Pallas kernel (TPU, or Hopper GPU; see gpu.py, which
               has run only in interpret mode so far); an error on CPU.
  "interpret": the TPU kernel in Pallas TPU interpret mode (any platform; slow, for tests).
  "cudnn":     `jax.nn.dot_product_attention(implementation="cudnn")`; an error off GPU.

Every implementation returns zeros for query rows whose keys are all masked. An additive
`bias` (relative-position biases) runs on XLA whatever the platform: the kernels take none yet.
"""
import jax
import jax.numpy as jnp
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels import impl as impl_lib
from pallas_kernels.flash_attention import gpu
from pallas_kernels.flash_attention import masks
from pallas_kernels.flash_attention import tpu
from pallas_kernels.flash_attention.reference import attention_reference
from pallas_kernels.flash_attention.reference import causal_mask

SUPPORTED_IMPLS = ("xla", "pallas", "interpret", "cudnn")
CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)


def check_inputs(q, k, v, *, causal, mask, bias=None):
  """Raises a ValueError/TypeError naming the problem with q, k, v, mask or bias."""
  if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
    raise ValueError(f"q, k, v must be [B, S, H, D]; got {q.shape}, {k.shape}, {v.shape}")
  if k.shape != v.shape:
    raise ValueError(f"k and v must have the same shape; got {k.shape}, {v.shape}")
  if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
    raise ValueError(f"q {q.shape} and k {k.shape} must agree on batch, heads and head dim")
  if not (q.dtype == k.dtype == v.dtype and jnp.issubdtype(q.dtype, jnp.floating)):
    raise TypeError(f"q, k, v must share one floating dtype; got {q.dtype}, {k.dtype}, "
                    f"{v.dtype}")
  if causal and q.shape[1] != k.shape[1]:
    raise ValueError(f"causal attention needs S == T; got S={q.shape[1]}, T={k.shape[1]}")
  if mask is not None:
    batch, seq_q, heads, _ = q.shape
    masks.as_4d_mask(mask, batch, heads, seq_q, k.shape[1])
  if bias is not None:
    if not jnp.issubdtype(bias.dtype, jnp.floating):
      raise TypeError(f"bias must be floating (added to the logits); got {bias.dtype}")
    try:
      jnp.broadcast_shapes(bias.shape, (q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
    except ValueError:
      raise ValueError(f"bias {bias.shape} does not broadcast to [B, H, S, T] = "
                       f"{[q.shape[0], q.shape[2], q.shape[1], k.shape[1]]}") from None


def cudnn_supports(q, k, v) -> bool:
  """Whether cuDNN flash attention takes these operands (conservative)."""
  dim = q.shape[-1]
  return (q.dtype == k.dtype == v.dtype and q.dtype in CUDNN_DTYPES
          and dim % 8 == 0 and dim <= 128)


def _automatic_impl(q, k, v) -> str:
  backend = jax.default_backend()
  if backend == "tpu":
    return "pallas" if max(q.shape[1], k.shape[1]) >= tpu.DEFAULT_BLOCK else "xla"
  if backend == "gpu" and cudnn_supports(q, k, v):
    return "cudnn"
  return "xla"


def _cudnn_attention(q, k, v, *, causal, mask, scale):
  if jax.default_backend() != "gpu":
    raise RuntimeError(f"impl='cudnn' needs a GPU; the default backend is "
                       f"{jax.default_backend()!r}")
  if not cudnn_supports(q, k, v):
    raise ValueError(f"impl='cudnn' needs bf16/fp16 q, k, v of one dtype and a head dim that "
                     f"is a multiple of 8 and <= 128; got {q.dtype}, D={q.shape[-1]}")
  mask4 = None
  if mask is not None:
    mask4 = masks.as_4d_mask(mask, q.shape[0], q.shape[2], q.shape[1], k.shape[1])
  out = jax.nn.dot_product_attention(q, k, v, mask=mask4, scale=scale, is_causal=causal,
                                     implementation="cudnn")
  if mask4 is None:
    return out
  # cuDNN's answer for rows with no key is its own; make it the documented zeros.
  keep = mask4 & causal_mask(q.shape[1]) if causal else mask4
  has_keys = jnp.any(keep, axis=-1)  # [Bm, Hm, S]
  return jnp.where(jnp.swapaxes(has_keys, 1, 2)[..., None], out, 0).astype(out.dtype)


def _pallas_attention(q, k, v, *, causal, mask, scale):
  backend = jax.default_backend()
  if backend == "tpu":
    return tpu.flash_attention_tpu(q, k, v, causal=causal, mask=mask, scale=scale)
  if backend == "gpu":
    return gpu.flash_attention_gpu(q, k, v, causal=causal, mask=mask, scale=scale)
  raise RuntimeError(f"impl='pallas' compiles for TPU or GPU, not {backend!r}; use "
                     f"impl='interpret' to run the kernel on CPU, or impl='xla'")


def flash_attention(q, k, v, *, causal=False, mask=None, scale=None, bias=None, impl=None):
  """Multi-head attention, fused where the platform allows; differentiable in q, k, v.

  Args:
    q: [B, S, H, D].
    k, v: [B, T, H, D].
    causal: keep key t for query s only when t <= s (needs S == T).
    mask: optional boolean broadcastable to [B, H, S, T]; True keeps a key. Shape
      [B or 1, 1, 1, T] (key padding, e.g. `masks.key_padding_mask`) takes the kernels'
      cheap path; any other shape is read tile by tile, skipping tiles with no kept key.
    scale: logit scale (a Python number; the kernels specialise on it), 1/sqrt(D) by default.
    bias: optional float, broadcastable to [B, H, S, T], added to the scaled logits (XLA
      only: with impl None it selects "xla"; a kernel impl asked for by name is an error).
    impl: None, "xla", "pallas", "interpret" or "cudnn" (see the module docstring).

  Returns:
    [B, S, H, D] in q's dtype; query rows whose keys are all masked are zero.
  """
  check_inputs(q, k, v, causal=causal, mask=mask, bias=bias)
  if bias is not None:  # a zoo-wide or environment default does not apply: no kernel takes it
    if impl not in (None, "xla"):
      raise ValueError(f"impl={impl!r} takes no additive bias; only impl='xla' does")
    impl = "xla"
  impl = (impl_lib.requested_impl(impl, supported=SUPPORTED_IMPLS)
          or _automatic_impl(q, k, v))
  if impl == "xla":
    return attention_reference(q, k, v, causal=causal, mask=mask, scale=scale, bias=bias)
  if impl == "interpret":
    return tpu.flash_attention_tpu(q, k, v, causal=causal, mask=mask, scale=scale,
                                   interpret=pltpu.InterpretParams())
  if impl == "cudnn":
    return _cudnn_attention(q, k, v, causal=causal, mask=mask, scale=scale)
  return _pallas_attention(q, k, v, causal=causal, mask=mask, scale=scale)
