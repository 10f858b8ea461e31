"""Gaussian splatting: the reference against a loop transcription of gs.cu's semantics, the TPU
kernel (TPU interpret mode) and the GPU kernel (Pallas interpret mode) against the reference,
forward and gradients, over awkward shapes; lowering for Mosaic TPU and Triton; the dispatcher."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from pallas_kernels.gaussian_splat import dispatch, gaussian_splat, gpu, layout, splat_reference


def random_gaussians(seed, b, n, c, sigma=(0.03, 0.4)):
  rng = np.random.default_rng(seed)
  geometry = np.stack([rng.uniform(*sigma, (b, n)), rng.uniform(*sigma, (b, n)),
                       rng.uniform(-0.95, 0.95, (b, n)), rng.uniform(-1.1, 1.1, (b, n)),
                       rng.uniform(-1.1, 1.1, (b, n))], -1).astype(np.float32)
  return geometry, rng.standard_normal((b, n, c)).astype(np.float32)


def loop_splat(geometry, features, h, w, dmax):
  """gs.cu's forward written as its loops (one image), in float32."""
  out = np.zeros((h, w, features.shape[-1]), np.float32)
  f32 = np.float32
  for i in range(h):
    for j in range(w):
      px, py = f32(2.0 * j / (w - 1) - 1.0), f32(2.0 * i / (h - 1) - 1.0)
      for (sx, sy, rho, x, y), color in zip(geometry, features):
        dx, dy = px - x, py - y
        if dx > dmax * sx or dx < -dmax * sx or dy > dmax * sy or dy < -dmax * sy:
          continue
        v = dx * dx / (sx * sx) - 2 * rho * dx * dy / (sx * sy) + dy * dy / (sy * sy)
        out[i, j] += np.exp(-v / (1 - rho * rho) / 2) * color
  return out


def test_reference_follows_the_cuda_loops():
  geometry, features = random_gaussians(0, 2, 9, 3)
  got = np.asarray(splat_reference(geometry, features, 7, 11, 3.0))
  for b in range(2):
    np.testing.assert_allclose(got[b], loop_splat(geometry[b], features[b], 7, 11, 3.0),
                               rtol=1e-5, atol=1e-6)


def test_truncation_is_per_axis_and_inclusive():
  # Pixel x = 0 and a Gaussian at x0 = -0.5 with sigma 0.25: |dx| = 0.5 = 2 sigma.
  geometry = jnp.array([[[0.25, 1.0, 0.0, -0.5, 0.0]]], jnp.float32)
  grid = splat_reference(geometry, jnp.ones((1, 1, 1)), 3, 3, 2.0)[0, :, :, 0]
  assert float(grid[1, 1]) == pytest.approx(np.exp(-2.0))  # kept at the boundary
  assert float(splat_reference(geometry, jnp.ones((1, 1, 1)), 3, 3, 1.99)[0, 1, 1, 0]) == 0.0


# B, N, C, H, W: one Gaussian, N not a multiple of any tile, several Gaussian and pixel tiles,
# grids that are not multiples of 128, a one-row grid, many small Gaussians (tile skipping).
SHAPES = [(1, 1, 1, 8, 8), (2, 37, 5, 13, 19), (1, 300, 16, 64, 64), (3, 129, 3, 1, 40),
          (1, 1000, 8, 33, 50)]


def _kernel(kind):
  if kind == "tpu":
    return lambda g, f, h, w, d: gaussian_splat(g, f, h, w, dmax=d, impl="interpret")

  def gpu_interpret(g, f, h, w, d):
    params, feats, coords, blocks = dispatch._packed(g, f, h, w, "gpu")
    grid = gpu.splat_forward(params, feats, coords, dmax=d, interpret=True, **blocks)
    return layout.unpack_grid(grid[:, :f.shape[-1]], h, w)
  return gpu_interpret


@pytest.mark.parametrize("kind", ["tpu", "gpu"])
@pytest.mark.parametrize("b,n,c,h,w", SHAPES)
def test_kernel_forward_matches_reference(kind, b, n, c, h, w):
  small = (0.01, 0.05) if n == 1000 else (0.03, 0.4)
  geometry, features = random_gaussians(n + h, b, n, c, sigma=small)
  want = splat_reference(geometry, features, h, w, 3.0)
  got = jax.jit(lambda g, f: _kernel(kind)(g, f, h, w, 3.0))(geometry, features)
  assert got.shape == (b, h, w, c) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def _gpu_interpret_vjp(geometry, features, h, w, dmax, dgrid):
  """The GPU backward kernel's gradients, through dispatch's packing (interpret mode)."""
  params, feats, coords, blocks = dispatch._packed(geometry, features, h, w, "gpu")
  c = features.shape[-1]
  packed = jnp.pad(layout.pack_grid(dgrid, coords.shape[1]),
                   ((0, 0), (0, feats.shape[-1] - c), (0, 0)))
  d_params, d_feats = gpu.splat_backward(params, feats, coords, packed, dmax=dmax,
                                         interpret=True, **blocks)
  n = geometry.shape[1]
  return d_params[:, :n, :5], d_feats[:, :n, :c]


@pytest.mark.parametrize("kind", ["tpu", "gpu"])
@pytest.mark.parametrize("b,n,c,h,w", [(2, 37, 5, 13, 19), (1, 300, 16, 64, 64),
                                       (1, 1000, 8, 33, 50)])
def test_kernel_gradients_match_autodiff(kind, b, n, c, h, w):
  small = (0.01, 0.05) if n == 1000 else (0.03, 0.4)
  geometry, features = random_gaussians(n + c, b, n, c, sigma=small)
  dgrid = jnp.asarray(np.random.default_rng(1).standard_normal((b, h, w, c)), jnp.float32)
  _, ref_vjp = jax.vjp(lambda g, f: splat_reference(g, f, h, w, 3.0), geometry, features)
  want = ref_vjp(dgrid)
  if kind == "tpu":
    _, vjp = jax.vjp(lambda g, f: gaussian_splat(g, f, h, w, dmax=3.0, impl="interpret"),
                     geometry, features)
    got = vjp(dgrid)
  else:
    got = _gpu_interpret_vjp(geometry, features, h, w, 3.0, dgrid)
  for name, g, r in zip(("geometry", "features"), got, want):
    g, r = np.asarray(g), np.asarray(r)
    scale = np.abs(r).max()
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def _fwd_bwd(kind):
  def run(geometry, features):
    out, vjp = jax.vjp(lambda g, f: dispatch._splat_kernel(g, f, 64, 64, 3.0, kind),
                       geometry, features)
    return out, vjp(out)
  return run


def test_tpu_kernels_lower_for_mosaic():
  g = jax.ShapeDtypeStruct((2, 300, 5), jnp.float32)
  f = jax.ShapeDtypeStruct((2, 300, 16), jnp.float32)
  module = export.export(jax.jit(_fwd_bwd("tpu")), platforms=["tpu"])(g, f).mlir_module()
  assert module.count("stablehlo.custom_call @tpu_custom_call") == 2  # forward, backward


def test_gpu_kernels_lower_for_triton():
  g = jax.ShapeDtypeStruct((2, 300, 5), jnp.float32)
  f = jax.ShapeDtypeStruct((2, 300, 16), jnp.float32)
  triton = "__gpu$xla.gpu.triton"
  exported = export.export(jax.jit(_fwd_bwd("gpu")), platforms=["cuda"],
                           disabled_checks=[export.DisabledSafetyCheck.custom_call(triton)])
  module = exported(g, f).mlir_module()
  assert len(re.findall(re.escape(f"custom_call @{triton}"), module)) == 2


def test_automatic_impl_on_cpu_is_the_reference():
  geometry, features = random_gaussians(3, 1, 5, 2)
  np.testing.assert_array_equal(gaussian_splat(geometry, features, 9, 9),
                                splat_reference(geometry, features, 9, 9, 3.0))
  with pytest.raises(RuntimeError, match="impl='interpret'"):
    gaussian_splat(geometry, features, 9, 9, impl="pallas")


@pytest.mark.parametrize("geometry,features,message", [
    (np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 2), np.float32), r"\[B, N, 5\]"),
    (np.zeros((1, 4, 5), np.float32), np.zeros((1, 3, 2), np.float32), "features must be"),
    (np.zeros((1, 4, 5), np.int32), np.zeros((1, 4, 2), np.float32), "floating point"),
])
def test_bad_inputs_are_named(geometry, features, message):
  with pytest.raises((ValueError, TypeError), match=message):
    gaussian_splat(geometry, features, 8, 8)
