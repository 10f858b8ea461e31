"""The Kinetics-400 Inception-v1 I3D of the FVD metric, in the layout of VideoGPT / TATS /
OmniTokenizer's `pytorch_i3d.py` (`i3d_pretrained_400.pt`, a port of DeepMind's TF-Hub model).

Conventions reproduced from that port:
  * every Unit3D pads like TF "SAME" from the input size (front = pad // 2), then a bias-free
    Conv3d, BatchNorm3d (eps 1e-5, running statistics), ReLU; the logits unit has a bias and
    neither norm nor ReLU;
  * max pools pad with zeros (not -inf) the same way; Conv3d_1a's `padding=(3, 3, 3)`
    argument is never used;
  * the head averages [2, 7, 7] windows with stride 1, applies the 1x1x1 logits conv and
    averages the logits over the remaining time steps: 400 pre-softmax features per clip.
Input: [B, T, 224, 224, 3] in [-1, 1], T >= 9 (three stride-2 'SAME' steps must leave two
time steps for the [2, 7, 7] pool).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes
from models.perception.inception import BatchNormEval

MIN_FRAMES = 9
INPUT_SIZE = 224
# name -> (input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels)
MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


@dataclasses.dataclass(frozen=True)
class I3DConfig:
  num_classes: int = 400
  precision: str = "highest"  # f32 matmuls: FVD statistics are sensitive to feature noise


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TF 'SAME' padding as the port computes it: (front, back)."""
  pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
  return pad // 2, pad - pad // 2


def _pads(shape, kernel, stride):
  return [same_padding(s, k, st) for s, k, st in zip(shape, kernel, stride)]


def max_pool_same(x, kernel, stride):
  """MaxPool3dSamePadding: zero padding to 'SAME', then a max pool."""
  pads = _pads(x.shape[1:4], kernel, stride)
  x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
  return nnx.max_pool(x, tuple(kernel), strides=tuple(stride), padding="VALID")


class Unit3D(nnx.Module):

  def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), *, norm_relu=True,
               bias=False, rngs, precision="highest"):
    self.kernel, self.stride, self.norm_relu = tuple(kernel), tuple(stride), norm_relu
    self.conv3d = nnx.Conv(cin, cout, self.kernel, strides=self.stride, padding="VALID",
                           use_bias=bias, precision=precision, rngs=rngs,
                           kernel_metadata=axes(None, None, None, "conv_in", "conv_out"))
    self.bn = BatchNormEval(cout, eps=1e-5) if norm_relu else None

  def __call__(self, x):
    pads = _pads(x.shape[1:4], self.kernel, self.stride)
    x = self.conv3d(jnp.pad(x, [(0, 0), *pads, (0, 0)]))
    return jax.nn.relu(self.bn(x)) if self.norm_relu else x


class InceptionModule(nnx.Module):

  def __init__(self, cin, out, *, rngs, precision):
    unit = lambda a, b, k=(1, 1, 1): Unit3D(a, b, k, rngs=rngs, precision=precision)
    self.b0 = unit(cin, out[0])
    self.b1a, self.b1b = unit(cin, out[1]), unit(out[1], out[2], (3, 3, 3))
    self.b2a, self.b2b = unit(cin, out[3]), unit(out[3], out[4], (3, 3, 3))
    self.b3b = unit(cin, out[5])

  def __call__(self, x):
    pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
    return jnp.concatenate([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                            self.b3b(pooled)], axis=-1)


class I3D(nnx.Module):

  def __init__(self, cfg: I3DConfig = I3DConfig(), *, rngs: nnx.Rngs):
    self.config = cfg
    p = cfg.precision
    self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), rngs=rngs, precision=p)
    self.Conv3d_2b_1x1 = Unit3D(64, 64, rngs=rngs, precision=p)
    self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), rngs=rngs, precision=p)
    for name, (cin, out) in MIXED.items():
      setattr(self, name, InceptionModule(cin, out, rngs=rngs, precision=p))
    self.logits = Unit3D(1024, cfg.num_classes, norm_relu=False, bias=True, rngs=rngs,
                         precision=p)

  def __call__(self, video):
    """[B, T, 224, 224, 3] in [-1, 1] -> the logits averaged over time [B, num_classes]."""
    if video.ndim != 5 or video.shape[-1] != 3:
      raise ValueError(f"I3D takes NTHWC videos [B, T, H, W, 3]; got shape {video.shape}")
    if video.shape[1] < MIN_FRAMES:
      raise ValueError(f"I3D needs at least {MIN_FRAMES} frames (its temporal pooling); got "
                       f"{video.shape[1]}")
    if video.shape[2:4] != (INPUT_SIZE, INPUT_SIZE):
      raise ValueError(f"I3D takes {INPUT_SIZE}x{INPUT_SIZE} frames (use fvd.preprocess); got "
                       f"{video.shape[2]}x{video.shape[3]}")
    x = self.Conv3d_1a_7x7(video.astype(jnp.float32))
    x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
    x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
    x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
    x = self.Mixed_3c(self.Mixed_3b(x))
    x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
      x = getattr(self, name)(x)
    x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
    x = self.Mixed_5c(self.Mixed_5b(x))
    x = nnx.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")
    return self.logits(x).mean(axis=(1, 2, 3))


def unit_names() -> list[str]:
  """Every Unit3D of the network in the port's module names."""
  names = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"]
  for mixed in MIXED:
    names += [f"{mixed}.{b}" for b in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")]
  return names
