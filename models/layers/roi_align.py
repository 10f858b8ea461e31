"""RoIAlign as torchvision.ops.roi_align(aligned=True, sampling_ratio=-1), with static shapes.

torchvision averages, in each of P x P bins, a grid of bilinear samples whose size adapts to
the box: ceil(box_h / P) x ceil(box_w / P). Bilinear sampling is separable and so is the grid,
so every box becomes two small matrices, A_y [P, H] and A_x [P, W] (each row the average of
its bin's sample weights), and the pooled features are A_y F A_x^T: the adaptive sample count
is a mask over a fixed maximum, the same compiled program for every box.

torchvision's sample rules kept: a sample at y < -1 or y > H is zero; otherwise y is clamped
to >= 0, and from H - 1 on it reads row H - 1 only.
"""
import math

import jax.numpy as jnp


def _axis_weights(start, length, pooled: int, size: int):
  """[R, P, size]: bin p's average bilinear weight on each pixel, for boxes [start, +length)."""
  max_samples = max(1, math.ceil(size / pooled) + 1)  # boxes span at most the map (+1 slack)
  bin_len = length / pooled  # [R]
  count = jnp.maximum(jnp.ceil(length / pooled), 1.0)  # samples per bin along this axis
  p = jnp.arange(pooled, dtype=jnp.float32)[:, None]
  s = jnp.arange(max_samples, dtype=jnp.float32)[None, :]
  pos = (start[:, None, None] + p * bin_len[:, None, None]
         + (s + 0.5) * bin_len[:, None, None] / count[:, None, None])  # [R, P, S]
  used = s < count[:, None, None]
  valid = used & (pos >= -1.0) & (pos <= size)
  pos = jnp.clip(pos, 0.0, size - 1.0)
  pixels = jnp.arange(size, dtype=jnp.float32)
  hat = jnp.maximum(0.0, 1.0 - jnp.abs(pos[..., None] - pixels))  # [R, P, S, size]
  weights = jnp.sum(jnp.where(valid[..., None], hat, 0.0), axis=2)
  return weights / count[:, None, None]


def roi_align(features, boxes, pooled: int):
  """features [B, H, W, C]; boxes [B, N, 4] (x1, y1, x2, y2) in pixels -> [B, N, P, P, C].

  Box coordinates follow torchvision with aligned=True and spatial_scale 1: pixel centres
  are at integer coordinates after the half-pixel shift.
  """
  b, h, w, c = features.shape
  n = boxes.shape[1]
  flat = boxes.reshape(b * n, 4).astype(jnp.float32)
  x1, y1, x2, y2 = (flat[:, k] for k in range(4))
  # aligned=True: the box starts half a pixel earlier; its size is not clamped to >= 1.
  ay = _axis_weights(y1 - 0.5, y2 - y1, pooled, h).reshape(b, n, pooled, h)
  ax = _axis_weights(x1 - 0.5, x2 - x1, pooled, w).reshape(b, n, pooled, w)
  rows = jnp.einsum("bnph,bhwc->bnpwc", ay, features.astype(jnp.float32), precision="highest")
  return jnp.einsum("bnpwc,bnqw->bnpqc", rows, ax, precision="highest").astype(features.dtype)
