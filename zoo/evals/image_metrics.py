"""PSNR and SSIM of NHWC images in [0, 1], one value per image, pure JAX and jit-able.

SSIM is the standard definition of tf.image.ssim and dm-pix: an 11x11 Gaussian window
(sigma 1.5) applied as a separable 'valid' filter, K1 = 0.01, K2 = 0.03, data range 1,
population (co)variances, the map averaged over rows, columns and channels. It equals
scikit-image's `structural_similarity(..., channel_axis=-1, data_range=1.0,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`: skimage filters the whole
image with reflected borders and then crops (11 - 1) // 2 = 5 pixels from each side, which
keeps exactly the pixels our 'valid' filter produces, computed from the same window.

Metrics do not clip: clamp reconstructions to [0, 1] (and round to uint8 levels if the
protocol asks for it) before calling them. Shape and dtype errors are raised always; NaN,
Inf and out-of-range values only when the arrays are concrete (not under jit).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def psnr(a, b):
  """Peak signal-to-noise ratio in dB with data range 1; [B, H, W, C] x2 -> [B] (inf if equal)."""
  a, b = check_image_pair(a, b)
  return _psnr(a, b)


def ssim(a, b, *, filter_size: int = SSIM_FILTER_SIZE, filter_sigma: float = SSIM_FILTER_SIGMA,
         k1: float = SSIM_K1, k2: float = SSIM_K2):
  """Structural similarity with data range 1; [B, H, W, C] x2 -> [B]."""
  a, b = check_image_pair(a, b)
  if a.shape[1] < filter_size or a.shape[2] < filter_size:
    raise ValueError(f"SSIM needs images of at least {filter_size}x{filter_size} "
                     f"(the filter size); got {a.shape[1]}x{a.shape[2]} (shape {a.shape})")
  return _ssim(a, b, filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2)


def check_image_pair(a, b):
  """Returns a, b as jax arrays or raises an error that names the problem."""
  for name, x in (("a", a), ("b", b)):
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
      raise ValueError(f"images {name} must be NHWC [B, H, W, C]; got shape {shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise TypeError(f"images {name} must be float in [0, 1]; got dtype {x.dtype} "
                      "(divide uint8 by 255)")
  if a.shape != b.shape:
    raise ValueError(f"images must have the same shape; got {a.shape} and {b.shape}")
  a, b = jnp.asarray(a), jnp.asarray(b)
  if not isinstance(a, jax.core.Tracer) and not isinstance(b, jax.core.Tracer):
    for name, x in (("a", a), ("b", b)):
      finite, lo, hi = (float(v) for v in _value_summary(x))
      if not finite:
        raise ValueError(f"images {name} contain NaN or Inf")
      if lo < 0.0 or hi > 1.0:
        raise ValueError(f"images {name} must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}] "
                         "(clip reconstructions with jnp.clip(x, 0, 1))")
  return a, b


@jax.jit
def _value_summary(x):
  # One small device->host transfer instead of copying the images to the host.
  return jnp.all(jnp.isfinite(x)), jnp.min(x), jnp.max(x)


def _compute_dtype(x):
  return jnp.promote_types(x.dtype, jnp.float32)


@jax.jit
def _psnr(a, b):
  dtype = _compute_dtype(a)
  mse = jnp.mean((a.astype(dtype) - b.astype(dtype)) ** 2, axis=(1, 2, 3))
  return -10.0 * jnp.log10(mse)


def gaussian_window(size: int, sigma: float) -> np.ndarray:
  """The normalised 1-D Gaussian of tf.image.ssim / dm-pix, centred on the middle tap."""
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  w = np.exp(-0.5 * (x / sigma) ** 2)
  return w / w.sum()


def _blur_valid(x, window):
  """Separable 'valid' filtering of every channel of x [B, H, W, C] with a 1-D window."""
  c = x.shape[-1]
  conv = functools.partial(
      jax.lax.conv_general_dilated, window_strides=(1, 1), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
      precision=jax.lax.Precision.HIGHEST)
  w = jnp.asarray(window, x.dtype)
  x = conv(x, jnp.tile(w.reshape(-1, 1, 1, 1), (1, 1, 1, c)))
  return conv(x, jnp.tile(w.reshape(1, -1, 1, 1), (1, 1, 1, c)))


@functools.partial(jax.jit, static_argnames=("filter_size", "filter_sigma", "k1", "k2"))
def _ssim(a, b, *, filter_size, filter_sigma, k1, k2):
  dtype = _compute_dtype(a)
  a, b = a.astype(dtype), b.astype(dtype)
  c = a.shape[-1]
  # One filtering pass over the five maps the statistics need.
  moments = _blur_valid(jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1),
                        gaussian_window(filter_size, filter_sigma))
  mu_a, mu_b, e_aa, e_bb, e_ab = (moments[..., i * c:(i + 1) * c] for i in range(5))
  # Float cancellation can push a variance below zero or a covariance past Cauchy-Schwarz;
  # clamp as dm-pix does (changes nothing when the arithmetic is exact).
  eps = jnp.finfo(jnp.float32).eps ** 2
  var_a = jnp.maximum(eps, e_aa - mu_a * mu_a)
  var_b = jnp.maximum(eps, e_bb - mu_b * mu_b)
  cov = e_ab - mu_a * mu_b
  cov = jnp.sign(cov) * jnp.minimum(jnp.sqrt(var_a * var_b), jnp.abs(cov))
  c1, c2 = k1 ** 2, k2 ** 2  # (K * data_range)^2 with data range 1.
  ssim_map = ((2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
              / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)))
  return jnp.mean(ssim_map, axis=(1, 2, 3))
