"""The one attention entry point of the zoo.

Every model calls `dot_product_attention`; it hands over to `pallas_kernels.flash_attention`,
which runs the Pallas kernel on TPU, cuDNN on GPU and plain XLA on CPU (or what `impl`, the
zoo default or ZOO_KERNEL_IMPL asks for), so fused kernels reach every model unchanged.
"""
from pallas_kernels import flash_attention


def dot_product_attention(q, k, v, *, mask=None, scale=None, causal=False, bias=None,
                          impl=None):
  """Multi-head attention with a float32 softmax.

  Args:
    q, k, v: [B, S, H, D] (k, v may have another sequence length T).
    mask: optional boolean, broadcastable to [B, H, S, T]; True keeps a key.
    scale: logit scale, 1/sqrt(D) by default.
    causal: keep key t for query s only when t <= s.
    bias: optional float broadcastable to [B, H, S, T], added to the scaled logits
      (relative-position biases; runs on XLA, the fused kernels take none).
    impl: None (by platform), "xla", "pallas", "interpret" or "cudnn".

  Returns:
    [B, S, H, D] in the dtype of q; a query row with every key masked is zero.
  """
  return flash_attention(q, k, v, causal=causal, mask=mask, scale=scale, bias=bias,
                         impl=impl)
