"""Public entry points: check the inputs, pick an implementation, run it.

impl (argument, else `pallas_kernels.impl` default / ZOO_KERNEL_IMPL, else automatic):
  None         by platform: TPU -> Pallas TPU kernel; GPU -> the Mosaic GPU kernel when it
               serves the call (bf16 "l2" `nearest_code`, D <= 256), else XLA; CPU -> XLA.
  "xla"        plain XLA: the reference (materialises [N, K]) while [N, K] is small, else
               the same search tiled with lax.map/scan (`tiled_xla`, same ids).
  "pallas"     the platform's compiled kernel; an error on CPU, or on a GPU for a call the GPU
               kernel does not serve.
  "interpret"  the TPU kernel in TPU interpret mode (`pltpu.InterpretParams()`), e.g. on CPU.

Gradients: the search is not differentiable. Inputs pass through `stop_gradient`, so the ids
(integers) and the distances get zero gradient; a loss that needs a gradient should recompute
the distance from `codebook[ids]`.
"""
import jax
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.impl import requested_impl
from pallas_kernels.nearest_code import checks, gpu, reference, residual_tpu, tiled_xla, tpu

SUPPORTED = ("xla", "pallas", "interpret")
# Above this many scores (64 MiB of float32) the "xla" path tiles instead of materialising.
MAX_MATERIALISED_SCORES = 2 ** 24


def _choose(impl, gpu_serves: bool, num_tokens: int) -> str:
  """One of "xla", "tpu", "gpu", "interpret"."""
  choice = _choose_by_platform(impl, gpu_serves)
  return "xla" if num_tokens == 0 else choice  # nothing to search; a kernel grid can't be empty


def _choose_by_platform(impl, gpu_serves: bool) -> str:
  impl = requested_impl(impl, supported=SUPPORTED)
  backend = jax.default_backend()
  if impl in ("xla", "interpret"):
    return impl
  if backend == "tpu":
    return "tpu"
  if backend == "gpu" and gpu_serves:
    return "gpu"
  if impl is None:
    return "xla"
  if backend == "gpu":
    raise NotImplementedError(
        "impl='pallas': the GPU kernel serves only bfloat16 `nearest_code` with metric='l2' "
        "and D <= 256; "
        "use impl='xla' (or None) for this call")
  raise NotImplementedError(
      f"impl='pallas' needs a TPU or GPU backend, but JAX's default backend is {backend!r}; "
      "use impl='interpret' to run the TPU kernel in interpret mode, or impl='xla'")


def nearest_code(x, codebook, *, metric="l2", impl=None):
  """Nearest code of each token, without materialising the [N, K] distances (kernels).

  Args:
    x: [N, D] float32 or bfloat16 tokens.
    codebook: [K, D] float32 or bfloat16 codes.
    metric: "l2" (squared euclidean) or "cosine" (1 - cosine similarity of l2-normalised
      vectors); see `reference` for the exact formulas.
    impl: None, "xla", "pallas" or "interpret" (module docstring).

  Returns:
    (ids int32 [N], distances float32 [N]); ties go to the lowest id.
  """
  checks.check_search(x, codebook, metric)
  x, codebook = jax.lax.stop_gradient((x, codebook))
  choice = _choose(impl, gpu.suits(x, codebook, metric), x.shape[0])
  if choice == "xla":
    if x.shape[0] * codebook.shape[0] > MAX_MATERIALISED_SCORES:
      return tiled_xla.tiled_nearest_code(x, codebook, metric=metric)
    return reference.nearest_code_reference(x, codebook, metric=metric)
  if choice == "gpu":
    return gpu.nearest_code(x, codebook)
  interpret = pltpu.InterpretParams() if choice == "interpret" else None
  return tpu.nearest_code(x, codebook, metric=metric, interpret=interpret)


def residual_nearest_code(x, codebooks, *, impl=None):
  """All levels of a residual quantiser in one kernel call (squared l2).

  Args:
    x: [N, D] float tokens.
    codebooks: [L, K, D] float codes, one codebook per level.
    impl: as for `nearest_code`; GPU runs XLA (there is no GPU kernel for this variant).

  Returns:
    (ids int32 [N, L], distances float32 [N, L]); see
    `reference.residual_nearest_code_reference`.
  """
  checks.check_residual(x, codebooks)
  x, codebooks = jax.lax.stop_gradient((x, codebooks))
  choice = _choose(impl, False, x.shape[0])
  if choice == "xla":
    return reference.residual_nearest_code_reference(x, codebooks)
  interpret = pltpu.InterpretParams() if choice == "interpret" else None
  return residual_tpu.residual_nearest_code(x, codebooks, interpret=interpret)


def grouped_nearest_code(x, codebooks, *, metric="l2", impl=None):
  """Each group (head) searches its own codebook.

  Args:
    x: [N, G, D] float tokens.
    codebooks: [G, K, D] float codes.
    metric: "l2" or "cosine".
    impl: as for `nearest_code`; GPU runs XLA (there is no GPU kernel for this variant).

  Returns:
    (ids int32 [N, G], distances float32 [N, G]).
  """
  checks.check_grouped(x, codebooks, metric)
  x, codebooks = jax.lax.stop_gradient((x, codebooks))
  choice = _choose(impl, False, x.shape[0])
  if choice == "xla":
    return reference.grouped_nearest_code_reference(x, codebooks, metric=metric)
  interpret = pltpu.InterpretParams() if choice == "interpret" else None
  return tpu.grouped_nearest_code(x, codebooks, metric=metric, interpret=interpret)
