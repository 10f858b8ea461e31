"""Deterministic stand-in weights in an official key layout, for parity tests and benchmarks.

Tests never download: they fill both the official PyTorch model and ours with these arrays.
Every tensor depends only on (seed, its name, its shape), so the same weights can be rebuilt
from a key/shape table anywhere, with numpy alone.
"""
import zlib

import numpy as np


def seeded_tensor(name: str, shape, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
  shape = tuple(int(s) for s in shape)
  leaf = name.rsplit(".", 1)[-1]
  is_norm = any(t in name for t in ("ln_", "norm", ".ln")) and len(shape) == 1
  if is_norm and leaf == "weight":  # norm scales near 1
    return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
  if leaf == "bias" or len(shape) <= 1:
    return (0.02 * rng.standard_normal(shape)).astype(np.float32)
  # `weight` and packed names such as MultiheadAttention's `in_proj_weight`.
  if leaf.endswith("weight") and len(shape) >= 2 and "embedding" not in name:
    fan_in = int(np.prod(shape[1:]))  # torch layouts: [out, in, ...]
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
  # Embeddings, codebooks, learned tokens.
  return (0.5 * rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)


def seeded_state_dict(shapes: dict, seed: int = 0) -> dict:
  """{name: shape} -> {name: float32 array}."""
  return {name: seeded_tensor(name, shape, seed) for name, shape in sorted(shapes.items())}


def codec_state_dict(shapes: dict, seed: int = 0) -> dict:
  """Seeded weights for the audio codecs: as `seeded_state_dict`, but with the weight-norm
  gains (`weight_g`) and Snake's `alpha` kept in [0.5, 1.5], where trained codecs have them
  (a gain or alpha near 0 makes a conv or a Snake degenerate)."""
  state = seeded_state_dict(shapes, seed)
  for name, value in state.items():
    if name.endswith(("weight_g", ".alpha", "original0")):
      rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
      state[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
  return state


def gpstoken_state_dict(shapes: dict, seed: int = 0) -> dict:
  """Seeded weights for GPSToken: as `seeded_state_dict`, with the Gaussian-delta head
  `to_gps.0` scaled by 0.02. The official model zero-initialises that head; at the seeded
  scale its deltas push sigma to ~1e-4, sub-pixel Gaussians whose float32 rendering turns
  1e-6 differences in the tokens into 1e-3 differences on the grid."""
  state = seeded_state_dict(shapes, seed)
  for name in ("to_gps.0.weight", "to_gps.0.bias"):
    if name in state:
      state[name] = (0.02 * state[name]).astype(np.float32)
  return state


def batchnorm_state_dict(shapes: dict, seed: int = 0) -> dict:
  """Seeded weights for conv + BatchNorm networks (the I3D): as `seeded_state_dict`, with the
  BatchNorm scales in [0.5, 1.5], running means near 0 and running variances in [0.5, 1.5],
  where a trained network has them (a variance near 0 blows the activations up)."""
  state = seeded_state_dict(shapes, seed)
  for name, value in state.items():
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 2])
    if name.endswith((".bn.weight", ".running_var")):
      state[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    elif name.endswith(".running_mean"):
      state[name] = (0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    elif name.endswith(".num_batches_tracked"):
      state[name] = np.asarray(1000, np.int64)
  return state


def omnitokenizer_state_dict(shapes: dict, seed: int = 0) -> dict:
  """Seeded weights for OmniTokenizer: as `seeded_state_dict`, with its LayerNorm gains
  (`gamma`, and the 1-D `weight`s: all its other weights are matrices) and the attention's
  q/k scales near 1, and the LayerNorm `beta` buffers zero, as the official model has them
  (a gain near 0 silences a block)."""
  state = seeded_state_dict(shapes, seed)
  for name, value in state.items():
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 3])
    if value.ndim == 1 and name.endswith((".gamma", ".weight", "q_scale", "k_scale")):
      state[name] = (1.0 + 0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    elif name.endswith(".beta"):
      state[name] = np.zeros(value.shape, np.float32)
  return state
