"""The one attention entry point of the zoo.

Every model calls `dot_product_attention`; fused kernels (Pallas, cuDNN) plug in behind it
without touching the models.
"""
import jax
import jax.numpy as jnp


def dot_product_attention(q, k, v, *, mask=None, scale=None):
  """Multi-head attention with a float32 softmax.

  Args:
    q, k, v: [B, S, H, D] (k, v may have another sequence length T).
    mask: optional boolean, broadcastable to [B, H, S, T]; True keeps a key.
    scale: logit scale, 1/sqrt(D) by default.

  Returns:
    [B, S, H, D] in the dtype of q.
  """
  if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
    raise ValueError(f"q, k, v must be [B, S, H, D]; got {q.shape}, {k.shape}, {v.shape}")
  scale = q.shape[-1] ** -0.5 if scale is None else scale
  logits = jnp.einsum("bshd,bthd->bhst", q, k, preferred_element_type=jnp.float32) * scale
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  return jnp.einsum("bhst,bthd->bshd", weights, v)
