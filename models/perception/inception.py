"""The FID InceptionV3 (TF `inception-2015-12-05` graph, ported by pytorch-fid): NHWC -> features.

The network of pytorch-fid's `InceptionV3(use_fid_inception=True)` and torch-fidelity's
`FeatureExtractorInceptionV3` (the two build the same layers and load the same file,
`pt_inception-2015-12-05-6726825d.pth`). It is torchvision's Inception3 without AuxLogits and
with the TF graph's quirks: every conv is bias-free, followed by BatchNorm in eval mode
(eps 0.001) and ReLU; the average pools of Mixed_5b..Mixed_7b do not count the zero padding;
Mixed_7c pools its fourth branch with a 3x3 *max* pool; the head is a 1008-way `fc` (1000
ImageNet classes plus 8 unused).

`model.features(images)` takes NHWC uint8 in [0, 255] or float in [0, 1], any size, and returns
{"pool": [B, 2048], "logits": [B, 1008], "logits_unbiased": [B, 1008]} in float32: the pool
features of FID/KID/precision-recall, the logits, and the logits without the fc bias (torch-
fidelity's Inception Score input). Images are first resized to 299x299, one of two ways:

  resize="tf1" (default)  torch-fidelity (and TiTok's evaluator): pixel values in [0, 255]
                          (float input times 255, not quantised: pass uint8 to reproduce a uint8
                          protocol), bilinear resize as TF1's resize_bilinear with
                          align_corners=False (source pixel = dst * in/out, no half-pixel
                          offset), then (x - 128) / 128.
  resize="pytorch_fid"    pytorch-fid: values in [0, 1] (uint8 / 255), torch's
                          F.interpolate(mode="bilinear", align_corners=False) (half-pixel centres,
                          no antialiasing), then 2x - 1.

Both resize before they normalise. Everything runs in float32, as torch-fidelity does by default
(its feature_extractor_internal_dtype="float64" stays float32 in 0.4.0); TiTok's copy of its
extractor runs in float64. On the seeded test weights, torch's float32 and float64 runs differ by
~2e-7 of the largest pool feature, and ours is within 2e-6 of either (tests/test_inception.py):
float64 would change FID statistics far less than the choice of resize does (~1e-3).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.axes import axes

INPUT_SIZE = 299
BATCHNORM_EPS = 1e-3
RESIZE_MODES = ("tf1", "pytorch_fid")


@dataclasses.dataclass(frozen=True)
class InceptionConfig:
  num_classes: int = 1008
  resize: str = "tf1"  # default input handling of `features`; see the module docstring
  # Conv and fc precision. "highest": true float32 on TPU and GPU too (default precision there
  # is bf16 passes / TF32, ~1e-3 off the references); "default" trades that for speed.
  precision: str = "highest"

  def __post_init__(self):
    if self.resize not in RESIZE_MODES:
      raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
    if self.precision not in ("highest", "high", "default"):
      raise ValueError(f"precision must be 'highest', 'high' or 'default', got "
                       f"{self.precision!r}")


class BatchNormEval(nnx.Module):
  """BatchNorm2d in eval mode: the running statistics of the checkpoint, never updated."""

  def __init__(self, dim: int, eps: float = BATCHNORM_EPS):
    self.eps = eps
    self.scale = nnx.Param(jnp.ones((dim,)), **axes("norm"))
    self.bias = nnx.Param(jnp.zeros((dim,)), **axes("norm"))
    self.mean = nnx.BatchStat(jnp.zeros((dim,)), **axes("norm"))
    self.var = nnx.BatchStat(jnp.ones((dim,)), **axes("norm"))

  def __call__(self, x):
    inv = self.scale[...] * jax.lax.rsqrt(self.var[...] + self.eps)
    return ((x - self.mean[...]) * inv + self.bias[...]).astype(x.dtype)


class ConvBN(nnx.Module):
  """BasicConv2d: bias-free Conv2d -> BatchNorm (eval) -> ReLU. kernel and padding are (h, w)."""

  def __init__(self, cin: int, cout: int, kernel, *, stride: int = 1, padding=(0, 0),
               rngs: nnx.Rngs, dtype=None, precision: str = "highest"):
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    self.conv = nnx.Conv(cin, cout, kernel, strides=(stride, stride), use_bias=False,
                         padding=((padding[0], padding[0]), (padding[1], padding[1])),
                         dtype=dtype, precision=precision, rngs=rngs,
                         kernel_metadata=axes(None, None, "conv_in", "conv_out"))
    self.bn = BatchNormEval(cout)

  def __call__(self, x):
    return jax.nn.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):
  # TF's average pool divides by the number of real pixels under the window (FID quirk).
  return nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                      count_include_pad=False)


def _max_pool_3x3(x, stride: int = 1):
  padding = ((1, 1), (1, 1)) if stride == 1 else "VALID"  # stride 2 pools floor, unpadded
  return nnx.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


# The blocks pass `**c` (rngs, dtype, precision) through to every ConvBN.


class InceptionA(nnx.Module):
  """35x35 block: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""

  def __init__(self, cin: int, pool_features: int, **c):
    self.branch1x1 = ConvBN(cin, 64, 1, **c)
    self.branch5x5_1 = ConvBN(cin, 48, 1, **c)
    self.branch5x5_2 = ConvBN(48, 64, 5, padding=(2, 2), **c)
    self.branch3x3dbl_1 = ConvBN(cin, 64, 1, **c)
    self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=(1, 1), **c)
    self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=(1, 1), **c)
    self.branch_pool = ConvBN(cin, pool_features, 1, **c)

  def __call__(self, x):
    return jnp.concatenate([
        self.branch1x1(x),
        self.branch5x5_2(self.branch5x5_1(x)),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        self.branch_pool(_avg_pool_3x3(x))], axis=-1)


class InceptionB(nnx.Module):
  """35 -> 17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3x3/2."""

  def __init__(self, cin: int, **c):
    self.branch3x3 = ConvBN(cin, 384, 3, stride=2, **c)
    self.branch3x3dbl_1 = ConvBN(cin, 64, 1, **c)
    self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=(1, 1), **c)
    self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2, **c)

  def __call__(self, x):
    return jnp.concatenate([
        self.branch3x3(x),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionC(nnx.Module):
  """17x17 block with factorised 7x7 convs (1x7 and 7x1) of `c7` channels inside."""

  def __init__(self, cin: int, c7: int, **c):
    row, col = dict(padding=(0, 3)), dict(padding=(3, 0))  # 1x7 and 7x1 keep the size
    self.branch1x1 = ConvBN(cin, 192, 1, **c)
    self.branch7x7_1 = ConvBN(cin, c7, 1, **c)
    self.branch7x7_2 = ConvBN(c7, c7, (1, 7), **row, **c)
    self.branch7x7_3 = ConvBN(c7, 192, (7, 1), **col, **c)
    self.branch7x7dbl_1 = ConvBN(cin, c7, 1, **c)
    self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), **col, **c)
    self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), **row, **c)
    self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), **col, **c)
    self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), **row, **c)
    self.branch_pool = ConvBN(cin, 192, 1, **c)

  def __call__(self, x):
    dbl = self.branch7x7dbl_1(x)
    for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                 self.branch7x7dbl_5):
      dbl = conv(dbl)
    return jnp.concatenate([
        self.branch1x1(x),
        self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
        dbl,
        self.branch_pool(_avg_pool_3x3(x))], axis=-1)


class InceptionD(nnx.Module):
  """17 -> 8 reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2."""

  def __init__(self, cin: int, **c):
    self.branch3x3_1 = ConvBN(cin, 192, 1, **c)
    self.branch3x3_2 = ConvBN(192, 320, 3, stride=2, **c)
    self.branch7x7x3_1 = ConvBN(cin, 192, 1, **c)
    self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3), **c)
    self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0), **c)
    self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2, **c)

  def __call__(self, x):
    b7 = x
    for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
      b7 = conv(b7)
    return jnp.concatenate([self.branch3x3_2(self.branch3x3_1(x)), b7,
                            _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionE(nnx.Module):
  """8x8 block whose 3x3 branches split into 1x3 and 3x1 halves; `pool` is "avg" in Mixed_7b
  (FIDInceptionE_1) and "max" in Mixed_7c (FIDInceptionE_2, the TF graph's quirk)."""

  def __init__(self, cin: int, pool: str, **c):
    if pool not in ("avg", "max"):
      raise ValueError(f"InceptionE pool must be 'avg' or 'max', got {pool!r}")
    self.pool = pool
    self.branch1x1 = ConvBN(cin, 320, 1, **c)
    self.branch3x3_1 = ConvBN(cin, 384, 1, **c)
    self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1), **c)
    self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0), **c)
    self.branch3x3dbl_1 = ConvBN(cin, 448, 1, **c)
    self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=(1, 1), **c)
    self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1), **c)
    self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0), **c)
    self.branch_pool = ConvBN(cin, 192, 1, **c)

  def __call__(self, x):
    b3 = self.branch3x3_1(x)
    dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    pooled = _avg_pool_3x3(x) if self.pool == "avg" else _max_pool_3x3(x)
    return jnp.concatenate([
        self.branch1x1(x),
        self.branch3x3_2a(b3), self.branch3x3_2b(b3),
        self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
        self.branch_pool(pooled)], axis=-1)


def _tf1_taps(n_in: int, n_out: int):
  """TF1 resize_bilinear (align_corners=False, no half-pixel centres), in float32 as
  torch-fidelity computes it: source = dst * float32(in / out), clamped on the high side."""
  src = np.arange(n_out, dtype=np.float32) * np.float32(n_in / n_out)
  lo = src.astype(np.int32)  # src >= 0: truncation is floor
  return lo, np.minimum(lo + 1, n_in - 1), src - lo.astype(np.float32)


def _torch_taps(n_in: int, n_out: int):
  """torch's bilinear with align_corners=False: half-pixel centres, negatives clamped to 0."""
  scale = np.float32(n_in / n_out)
  src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5))
                   - np.float32(0.5), np.float32(0.0))
  lo = src.astype(np.int32)
  return lo, np.minimum(lo + 1, n_in - 1), src - lo.astype(np.float32)


def resize_tf1(x, size: int = INPUT_SIZE):
  """[B, H, W, C] float -> [B, size, size, C]; the same lerps in the same order as torch-fidelity's
  `interpolate_bilinear_2d_like_tensorflow1x` (columns first, then rows)."""
  ylo, yhi, dy = _tf1_taps(x.shape[1], size)
  xlo, xhi, dx = _tf1_taps(x.shape[2], size)
  top, bottom = x[:, ylo], x[:, yhi]
  dx, dy = dx[None, None, :, None], dy[None, :, None, None]
  upper = top[:, :, xlo] + (top[:, :, xhi] - top[:, :, xlo]) * dx
  lower = bottom[:, :, xlo] + (bottom[:, :, xhi] - bottom[:, :, xlo]) * dx
  return upper + (lower - upper) * dy


def resize_pytorch(x, size: int = INPUT_SIZE):
  """[B, H, W, C] float -> [B, size, size, C] as F.interpolate(mode="bilinear",
  align_corners=False) computes it: weights (1 - t, t) on each axis, no antialiasing."""
  ylo, yhi, dy = _torch_taps(x.shape[1], size)
  xlo, xhi, dx = _torch_taps(x.shape[2], size)
  wx1, wy1 = dx[None, None, :, None], dy[None, :, None, None]
  wx0, wy0 = 1.0 - wx1, 1.0 - wy1
  top, bottom = x[:, ylo], x[:, yhi]
  upper = wx0 * top[:, :, xlo] + wx1 * top[:, :, xhi]
  lower = wx0 * bottom[:, :, xlo] + wx1 * bottom[:, :, xhi]
  return wy0 * upper + wy1 * lower


def check_inception_images(images):
  """NHWC RGB, uint8 or float in [0, 1]; value checks run on concrete arrays only."""
  shape = getattr(images, "shape", None)
  if shape is None or len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f"Inception takes NHWC RGB images [B, H, W, 3]; got shape {shape}")
  if min(shape[1:3]) < 1:
    raise ValueError(f"Inception needs images of at least 1x1; got shape {shape}")
  dtype = np.dtype(images.dtype)
  if dtype != np.uint8 and not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"Inception takes uint8 images in [0, 255] or float images in [0, 1]; got "
                    f"dtype {dtype}")
  if dtype == np.uint8 or isinstance(images, jax.core.Tracer) or not images.size:
    return
  xp = np if isinstance(images, np.ndarray) else jnp  # no host copy of device arrays
  if not bool(xp.all(xp.isfinite(images))):  # first: CPU min/max may skip NaNs
    raise ValueError("Inception images contain NaN or Inf")
  lo, hi = float(xp.min(images)), float(xp.max(images))
  if lo < 0.0 or hi > 1.0:
    raise ValueError(f"float Inception images must be in [0, 1]; got values in [{lo:.4g}, "
                     f"{hi:.4g}] (pass uint8 for [0, 255])")


def preprocess(images, resize: str):
  """uint8 / [0, 1] float NHWC -> the network's input, 299x299 in [-1, 1] (float32)."""
  is_uint8 = np.dtype(images.dtype) == np.uint8
  x = jnp.asarray(images).astype(jnp.float32)
  same_size = x.shape[1:3] == (INPUT_SIZE, INPUT_SIZE)  # both resizes are then the identity
  if resize == "tf1":
    x = x if is_uint8 else x * 255.0
    x = x if same_size else resize_tf1(x)
    return (x - 128.0) / 128.0
  if resize == "pytorch_fid":
    x = x / 255.0 if is_uint8 else x
    x = x if same_size else resize_pytorch(x)
    return 2.0 * x - 1.0
  raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")


class InceptionV3(nnx.Module):
  """The FID Inception; `features(images)` -> {"pool", "logits", "logits_unbiased"}."""

  def __init__(self, config: InceptionConfig = InceptionConfig(), *, rngs: nnx.Rngs,
               dtype=None):
    self.config = config
    c = dict(rngs=rngs, dtype=dtype, precision=config.precision)  # for every ConvBN
    self.conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2, **c)
    self.conv2d_2a_3x3 = ConvBN(32, 32, 3, **c)
    self.conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=(1, 1), **c)
    self.conv2d_3b_1x1 = ConvBN(64, 80, 1, **c)
    self.conv2d_4a_3x3 = ConvBN(80, 192, 3, **c)
    self.mixed_5b = InceptionA(192, 32, **c)
    self.mixed_5c = InceptionA(256, 64, **c)
    self.mixed_5d = InceptionA(288, 64, **c)
    self.mixed_6a = InceptionB(288, **c)
    self.mixed_6b = InceptionC(768, 128, **c)
    self.mixed_6c = InceptionC(768, 160, **c)
    self.mixed_6d = InceptionC(768, 160, **c)
    self.mixed_6e = InceptionC(768, 192, **c)
    self.mixed_7a = InceptionD(768, **c)
    self.mixed_7b = InceptionE(1280, "avg", **c)
    self.mixed_7c = InceptionE(2048, "max", **c)
    self.fc = nnx.Linear(2048, config.num_classes, precision=config.precision, rngs=rngs,
                         kernel_metadata=axes("embed", None), bias_metadata=axes(None))

  def pool_features(self, x):
    """Network input [B, 299, 299, 3] in [-1, 1] -> [B, 2048] float32 (global average pool)."""
    for conv in (self.conv2d_1a_3x3, self.conv2d_2a_3x3, self.conv2d_2b_3x3):
      x = conv(x)
    x = _max_pool_3x3(x, stride=2)
    x = _max_pool_3x3(self.conv2d_4a_3x3(self.conv2d_3b_1x1(x)), stride=2)
    for block in (self.mixed_5b, self.mixed_5c, self.mixed_5d, self.mixed_6a, self.mixed_6b,
                  self.mixed_6c, self.mixed_6d, self.mixed_6e, self.mixed_7a, self.mixed_7b,
                  self.mixed_7c):
      x = block(x)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))

  def features(self, images, *, resize: str | None = None) -> dict:
    """NHWC uint8 [0, 255] or float [0, 1], any size -> {"pool": [B, 2048], "logits": [B, 1008],
    "logits_unbiased": [B, 1008]} float32; `resize` overrides config.resize for this call."""
    resize = self.config.resize if resize is None else resize
    if resize not in RESIZE_MODES:
      raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    check_inception_images(images)
    return _network(self, preprocess(images, resize))

  def __call__(self, images, *, resize: str | None = None) -> dict:
    return self.features(images, resize=resize)


@nnx.jit
def _network(model: InceptionV3, x) -> dict:
  """The 299x299 network and head, compiled once per batch size whatever the input size (the
  resize runs outside: a jit over it would recompile the whole network for every image size)."""
  pool = model.pool_features(x)
  unbiased = jnp.matmul(pool, model.fc.kernel[...], precision=model.config.precision)
  return {"pool": pool, "logits": unbiased + model.fc.bias[...], "logits_unbiased": unbiased}
