"""`gaussian_splat`: checks the inputs once, then picks an implementation.

impl (argument, else `pallas_kernels.impl` zoo default, else ZOO_KERNEL_IMPL):
  None:        TPU -> the Pallas TPU kernel; GPU and CPU -> XLA (the Pallas GPU kernel has
               not run on a GPU yet, so it is opt-in with impl="pallas").
  "xla":       `splat_reference` (materialises the [B, N, H*W] weights), autodiff gradients.
  "pallas":    the platform's compiled Pallas kernel (TPU, or GPU through Triton).
  "interpret": the TPU kernel in Pallas TPU interpret mode (any platform; slow, for tests).
The kernels carry a custom VJP with gs.cu's analytic gradients.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels import impl as impl_lib
from pallas_kernels.gaussian_splat import gpu, layout, tpu
from pallas_kernels.gaussian_splat.reference import NUM_GEOMETRY, splat_reference

SUPPORTED_IMPLS = ("xla", "pallas", "interpret")


def check_inputs(geometry, features, height, width):
  if geometry.ndim != 3 or geometry.shape[-1] != NUM_GEOMETRY:
    raise ValueError(f"geometry must be [B, N, 5] (sigma_x, sigma_y, rho, x, y); got shape "
                     f"{geometry.shape}")
  if features.ndim != 3 or features.shape[:2] != geometry.shape[:2]:
    raise ValueError(f"features must be [B, N, C] with geometry's B, N {geometry.shape[:2]}; "
                     f"got shape {features.shape}")
  for name, x in (("geometry", geometry), ("features", features)):
    if not jnp.issubdtype(x.dtype, jnp.floating):
      raise TypeError(f"{name} must be floating point; got {x.dtype}")
  if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
    raise ValueError(f"the grid size must be positive ints; got {height} x {width}")


def _next_pow2(n: int) -> int:
  return 1 << max(n - 1, 0).bit_length()


def _plan(kind, n, p, c):
  """(padded N, padded P, padded C, block_g, block_p) for the kernel kind."""
  if kind == "gpu":  # Triton: power-of-two blocks, dot operands of at least 16
    n_pad, p_pad, c_pad = _next_pow2(max(n, 16)), _next_pow2(max(p, 16)), _next_pow2(max(c, 16))
    return n_pad, p_pad, c_pad, min(gpu.BLOCK_GAUSSIANS, n_pad), min(gpu.BLOCK_PIXELS, p_pad)
  # TPU: a block's last dim is a multiple of 128 or the whole (padded) axis.
  block_g = tpu.BLOCK_GAUSSIANS if n > tpu.BLOCK_GAUSSIANS else layout.round_up(n, 8)
  block_p = tpu.BLOCK_PIXELS if p > tpu.BLOCK_PIXELS else layout.round_up(p, 128)
  return layout.round_up(n, block_g), layout.round_up(p, block_p), c, block_g, block_p


def _kernels(kind):
  if kind == "gpu":
    return gpu.splat_forward, gpu.splat_backward, {}
  interpret = pltpu.InterpretParams() if kind == "interpret" else None
  return tpu.splat_forward, tpu.splat_backward, {"interpret": interpret}


def _packed(geometry, features, height, width, kind):
  b, n, c = features.shape
  n_pad, p_pad, c_pad, block_g, block_p = _plan(kind, n, height * width, c)
  params, feats = layout.pack_gaussians(geometry, features, n_pad)
  feats = jnp.pad(feats, ((0, 0), (0, 0), (0, c_pad - c)))
  coords = layout.pixel_row(height, width, p_pad)
  return params, feats, coords, dict(block_g=block_g, block_p=block_p)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _splat_kernel(geometry, features, height, width, dmax, kind):
  return _splat_kernel_fwd(geometry, features, height, width, dmax, kind)[0]


def _splat_kernel_fwd(geometry, features, height, width, dmax, kind):
  forward, _, extra = _kernels(kind)
  params, feats, coords, blocks = _packed(geometry, features, height, width, kind)
  grid = forward(params, feats, coords, dmax=dmax, **blocks, **extra)
  c = features.shape[-1]
  # The packed operands are kept for the backward: no second padding pass.
  return layout.unpack_grid(grid[:, :c], height, width), (geometry, features, params, feats,
                                                          coords)


def _splat_kernel_bwd(height, width, dmax, kind, residuals, dgrid):
  geometry, features, params, feats, coords = residuals
  _, backward, extra = _kernels(kind)
  _, n, c = features.shape
  *_, block_g, block_p = _plan(kind, n, height * width, c)
  blocks = dict(block_g=block_g, block_p=block_p)
  dgrid = layout.pack_grid(dgrid, coords.shape[1])
  dgrid = jnp.pad(dgrid, ((0, 0), (0, feats.shape[-1] - c), (0, 0)))
  d_params, d_feats = backward(params, feats, coords, dgrid, dmax=dmax, **blocks, **extra)
  return (d_params[:, :n, :NUM_GEOMETRY].astype(geometry.dtype),
          d_feats[:, :n, :c].astype(features.dtype))


_splat_kernel.defvjp(_splat_kernel_fwd, _splat_kernel_bwd)


def _automatic_impl():
  return "pallas" if jax.default_backend() == "tpu" else "xla"


def gaussian_splat(geometry, features, height: int, width: int, *, dmax: float = 3.0,
                   impl=None):
  """Renders Gaussians additively onto an H x W feature grid (GPSToken's gs.cu semantics).

  Args:
    geometry: [B, N, 5] (sigma_x, sigma_y, rho, x, y) in normalised [-1, 1] coordinates;
      sigma > 0 and |rho| < 1 (callers check values: this traces under jit).
    features: [B, N, C].
    height, width: the grid size; pixel (i, j) is at (2j/(W-1) - 1, 2i/(H-1) - 1).
    dmax: truncation, in sigmas, along each axis.
    impl: None, "xla", "pallas" or "interpret" (module docstring).

  Returns:
    [B, H, W, C] float32; differentiable in geometry and features.
  """
  check_inputs(geometry, features, height, width)
  impl = impl_lib.requested_impl(impl, supported=SUPPORTED_IMPLS) or _automatic_impl()
  dmax = float(dmax)
  if impl == "xla":
    return splat_reference(geometry, features, height, width, dmax)
  if impl == "interpret":
    return _splat_kernel(geometry, features, height, width, dmax, "interpret")
  backend = jax.default_backend()
  if backend not in ("tpu", "gpu"):
    raise RuntimeError(f"impl='pallas' compiles for TPU or GPU, not {backend!r}; use "
                       "impl='interpret' to run the kernel on CPU, or impl='xla'")
  return _splat_kernel(geometry, features, height, width, dmax, backend)
