"""Fused nearest-code search: the TPU kernel (TPU interpret mode) and the Mosaic GPU kernel (its
CPU interpreter) against the pure-jnp reference, plus the dispatcher and its input errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental.pallas import tpu as pltpu

from pallas_kernels.impl import ENV_VAR, default_impl
from pallas_kernels.nearest_code import (
    dispatch,
    grouped_nearest_code,
    grouped_nearest_code_reference,
    gpu,
    nearest_code,
    nearest_code_reference,
    residual_nearest_code,
    residual_nearest_code_reference,
    residual_tpu,
    tiled_xla,
    tpu,
)

INTERPRET = pltpu.InterpretParams()


def normal(seed, shape, dtype=jnp.float32):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def assert_same_search(got, want):
  """Equal ids; float32 distances within 1e-5 relative."""
  (ids, distances), (want_ids, want_distances) = got, want
  assert ids.dtype == jnp.int32 and distances.dtype == jnp.float32
  assert ids.shape == want_ids.shape and distances.shape == want_distances.shape
  np.testing.assert_array_equal(np.asarray(ids), np.asarray(want_ids))
  np.testing.assert_allclose(np.asarray(distances), np.asarray(want_distances),
                             rtol=1e-5, atol=1e-5)


# Every N, K, D, dtype and metric appears; N=1000 x K=16384 x D=16 once (about 1 s).
SEARCH_CASES = [
    (1, 8, 8, jnp.float32, "l2"),
    (1, 1000, 12, jnp.bfloat16, "cosine"),
    (1, 16384, 256, jnp.float32, "cosine"),
    (1000, 8, 16, jnp.bfloat16, "l2"),
    (1000, 8, 64, jnp.float32, "cosine"),
    (1000, 1000, 12, jnp.float32, "l2"),
    (1000, 1000, 64, jnp.float32, "cosine"),
    (1000, 1000, 256, jnp.bfloat16, "l2"),
    (1000, 16384, 16, jnp.float32, "l2"),
]


@pytest.mark.parametrize("n,k,d,dtype,metric", SEARCH_CASES)
def test_tpu_kernel_matches_reference(n, k, d, dtype, metric):
  x, codebook = normal(n * 7 + d, (n, d), dtype), normal(k * 3 + d, (k, d), dtype)
  got = jax.jit(lambda a, b: tpu.nearest_code(a, b, metric=metric, interpret=INTERPRET))(
      x, codebook)
  assert_same_search(got, nearest_code_reference(x, codebook, metric=metric))


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_tpu_kernel_ragged_tiles(metric):
  # Several token and code tiles, neither count a multiple of its tile.
  x, codebook = normal(1, (200, 24)), normal(2, (300, 24))
  got = tpu.nearest_code(x, codebook, metric=metric, interpret=INTERPRET,
                         block_tokens=64, block_codes=128)
  assert_same_search(got, nearest_code_reference(x, codebook, metric=metric))


def test_padded_codes_never_win():
  # Zero-padded codes would be nearest (l2: x near 0, codes far; cosine: every real code points
  # away from x, so a zero code's distance 1 beats them all) unless they are masked.
  far_codes = 10.0 + jnp.abs(normal(3, (130, 8)))
  near_zero = 1e-3 * normal(4, (5, 8))
  for metric, x in (("l2", near_zero), ("cosine", -1.0 - jnp.abs(normal(5, (5, 8))))):
    ids, distances = tpu.nearest_code(x, far_codes, metric=metric, interpret=INTERPRET)
    assert int(ids.max()) < 130
    assert_same_search((ids, distances), nearest_code_reference(x, far_codes, metric=metric))


def duplicated_codebook():
  """300 codes where 7 repeats 3 (same tile), 200 repeats 5 and 299 repeats 130 (later tiles of
  128 codes); the queries are the repeated codes, so each has two exact nearest codes."""
  codebook = normal(6, (300, 16))
  for low, high in ((3, 7), (5, 200), (130, 299)):
    codebook = codebook.at[high].set(codebook[low])
  queries = codebook[jnp.array([7, 200, 299, 3])]
  return queries, codebook, np.array([3, 5, 130, 3])


def test_ties_go_to_lowest_id():
  queries, codebook, lowest = duplicated_codebook()
  ids, _ = tpu.nearest_code(queries, codebook, interpret=INTERPRET, block_codes=128)
  np.testing.assert_array_equal(np.asarray(ids), lowest)
  np.testing.assert_array_equal(np.asarray(ids), np.asarray(nearest_code_reference(
      queries, codebook)[0]))


def test_ties_go_to_lowest_id_cosine_scaled_duplicates():
  # Under cosine, a code and twice that code are the same direction.
  codebook = normal(7, (260, 16))
  codebook = codebook.at[250].set(2.0 * codebook[10])
  ids, _ = tpu.nearest_code(codebook[10:11] * 3.0, codebook, metric="cosine",
                            interpret=INTERPRET, block_codes=128)
  want, _ = nearest_code_reference(codebook[10:11] * 3.0, codebook, metric="cosine")
  assert int(ids[0]) == int(want[0]) and int(ids[0]) in (10, 250)


@pytest.mark.parametrize("n,levels,k,d,dtype,blocks", [
    (300, 4, 1000, 12, jnp.float32, {}),
    (1, 3, 8, 8, jnp.bfloat16, {}),
    (257, 2, 300, 64, jnp.float32, {"block_tokens": 64, "block_codes": 128}),
])
def test_residual_kernel_matches_reference(n, levels, k, d, dtype, blocks):
  x, codebooks = normal(n + 1, (n, d), dtype), normal(k + 2, (levels, k, d), dtype)
  got = residual_tpu.residual_nearest_code(x, codebooks, interpret=INTERPRET, **blocks)
  assert got[0].shape == (n, levels)
  assert_same_search(got, residual_nearest_code_reference(x, codebooks))


def test_residual_levels_use_the_updated_residual():
  # Level 1 must search r_1 = x - c_0[id_0], not x: with the same codebook at both levels, the
  # second id differs from the first for most tokens.
  codebook = normal(8, (64, 8))
  x = normal(9, (50, 8))
  ids, _ = residual_tpu.residual_nearest_code(x, jnp.stack([codebook, codebook]),
                                              interpret=INTERPRET)
  assert np.mean(np.asarray(ids[:, 0] != ids[:, 1])) > 0.5
  want, _ = nearest_code_reference(x - codebook[ids[:, 0]], codebook)
  np.testing.assert_array_equal(np.asarray(ids[:, 1]), np.asarray(want))


@pytest.mark.parametrize("n,groups,k,d,dtype,metric", [
    (300, 4, 1000, 12, jnp.float32, "l2"),
    (1, 3, 8, 8, jnp.bfloat16, "cosine"),
    (100, 2, 300, 256, jnp.float32, "cosine"),
])
def test_grouped_kernel_matches_reference(n, groups, k, d, dtype, metric):
  x, codebooks = normal(n + 3, (n, groups, d), dtype), normal(k + 4, (groups, k, d), dtype)
  got = tpu.grouped_nearest_code(x, codebooks, metric=metric, interpret=INTERPRET)
  assert got[0].shape == (n, groups)
  assert_same_search(got, grouped_nearest_code_reference(x, codebooks, metric=metric))


def test_grouped_reference_is_per_group_search():
  x, codebooks = normal(10, (20, 3, 8)), normal(11, (3, 40, 8))
  ids, distances = grouped_nearest_code_reference(x, codebooks)
  for g in range(3):
    want_ids, want_distances = nearest_code_reference(x[:, g], codebooks[g])
    np.testing.assert_array_equal(np.asarray(ids[:, g]), np.asarray(want_ids))
    np.testing.assert_allclose(np.asarray(distances[:, g]), np.asarray(want_distances))


def test_reference_distances_are_the_definitions():
  x, codebook = normal(12, (30, 8)), normal(13, (50, 8))
  ids, distances = nearest_code_reference(x, codebook)
  brute = np.sum((np.asarray(x)[:, None, :] - np.asarray(codebook)[None]) ** 2, axis=-1)
  np.testing.assert_array_equal(np.asarray(ids), brute.argmin(axis=1))
  np.testing.assert_allclose(np.asarray(distances), brute.min(axis=1), rtol=1e-5, atol=1e-5)
  ids, distances = nearest_code_reference(x, codebook, metric="cosine")
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  cos = unit(np.asarray(x)) @ unit(np.asarray(codebook)).T
  np.testing.assert_array_equal(np.asarray(ids), cos.argmax(axis=1))
  np.testing.assert_allclose(np.asarray(distances), 1.0 - cos.max(axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n,k,d", [(100, 300, 12), (1, 8, 64), (200, 1000, 16)])
def test_gpu_kernel_logic_in_cpu_interpreter(n, k, d):
  x, codebook = normal(n + 5, (n, d), jnp.bfloat16), normal(k + 6, (k, d), jnp.bfloat16)
  got = jax.jit(lambda a, b: gpu.nearest_code(a, b, interpret=gpu.interpret_params()))(
      x, codebook)
  assert_same_search(got, nearest_code_reference(x, codebook))


def test_gpu_kernel_ties_go_to_lowest_id():
  queries, codebook, lowest = duplicated_codebook()
  ids, _ = gpu.nearest_code(queries.astype(jnp.bfloat16), codebook.astype(jnp.bfloat16),
                            interpret=gpu.interpret_params())
  np.testing.assert_array_equal(np.asarray(ids), lowest)


def test_gpu_kernel_serves_only_bf16_l2_up_to_d256():
  bf16, f32 = jnp.zeros((1, 8), jnp.bfloat16), jnp.zeros((1, 8), jnp.float32)
  assert gpu.suits(bf16, bf16, "l2")
  assert not gpu.suits(bf16, bf16, "cosine")
  assert not gpu.suits(f32, f32, "l2")
  assert not gpu.suits(jnp.zeros((1, 512), jnp.bfloat16), jnp.zeros((1, 512), jnp.bfloat16), "l2")


def lowered_kernel_calls(fn, platform, *shapes):
  """Lowers for a platform this machine lacks: Pallas's TPU / Mosaic GPU lowering rules run, the
  kernel lands in a custom call (the platform compiler itself does not run)."""
  text = jax.jit(fn).trace(*shapes).lower(lowering_platforms=(platform,)).as_text()
  return text.count("tpu_custom_call") if platform == "tpu" else text.count("mosaic_gpu")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_tpu_kernels_lower_for_tpu(dtype, metric):
  shape = jax.ShapeDtypeStruct
  x, codes = shape((1000, 12), dtype), shape((3000, 12), dtype)
  assert lowered_kernel_calls(lambda a, b: tpu.nearest_code(a, b, metric=metric), "tpu", x, codes)
  assert lowered_kernel_calls(lambda a, b: tpu.grouped_nearest_code(a, b, metric=metric), "tpu",
                              shape((1000, 2, 12), dtype), shape((2, 3000, 12), dtype))
  if metric == "l2":
    assert lowered_kernel_calls(residual_tpu.residual_nearest_code, "tpu", x,
                                shape((3, 3000, 12), dtype))


@pytest.mark.parametrize("d", [12, 256])
def test_gpu_kernel_lowers_for_cuda(d):
  shape = jax.ShapeDtypeStruct
  assert lowered_kernel_calls(gpu.nearest_code, "cuda", shape((1000, d), jnp.bfloat16),
                              shape((3000, d), jnp.bfloat16))


def contains_kernel(fn, *args):
  # A fresh wrapper each time: tracing is cached per function, and the impl is chosen at trace.
  return "pallas_call" in str(jax.make_jaxpr(lambda *a: fn(*a))(*args))


@pytest.mark.parametrize("n,k,d,dtype,metric", SEARCH_CASES)
def test_tiled_xla_search_matches_reference(n, k, d, dtype, metric):
  x, codebook = normal(20, (n, d), dtype), normal(21, (k, d), dtype)
  # Small tiles so that every case crosses tile edges in both directions.
  got = tiled_xla.tiled_nearest_code(x, codebook, metric=metric, block_tokens=96,
                                     block_codes=160)
  assert_same_search(got, nearest_code_reference(x, codebook, metric=metric))


def test_tiled_xla_ties_go_to_lowest_id_across_tiles():
  codebook = normal(22, (300, 8))
  codebook = codebook.at[250].set(codebook[3]).at[170].set(codebook[3])
  x = codebook[jnp.asarray([3, 170, 250, 5])] + 1e-3
  ids, _ = tiled_xla.tiled_nearest_code(x, codebook, block_tokens=2, block_codes=64)
  assert np.asarray(ids).tolist() == [3, 3, 3, 5]


def test_dispatcher_xla_tiles_large_searches(monkeypatch):
  monkeypatch.setattr(dispatch, "MAX_MATERIALISED_SCORES", 1000)
  x, codebook = normal(23, (100, 8)), normal(24, (300, 8))
  hlo = jax.jit(lambda a, b: nearest_code(a, b, impl="xla")).lower(x, codebook).as_text()
  assert "while" in hlo  # the scan, not one [100, 300] block
  assert_same_search(nearest_code(x, codebook, impl="xla"), nearest_code_reference(x, codebook))


def test_dispatcher_xla_is_reference_and_auto_is_xla_on_cpu():
  x, codebook = normal(14, (40, 8)), normal(15, (70, 8))
  want = nearest_code_reference(x, codebook, metric="cosine")
  assert_same_search(nearest_code(x, codebook, metric="cosine", impl="xla"), want)
  assert_same_search(nearest_code(x, codebook, metric="cosine"), want)
  assert not contains_kernel(lambda a, b: nearest_code(a, b), x, codebook)


def test_dispatcher_interpret_runs_the_kernel_under_jit():
  x, codebook = normal(16, (40, 8)), normal(17, (70, 8))
  search = jax.jit(lambda a, b: nearest_code(a, b, impl="interpret"))
  assert_same_search(search(x, codebook), nearest_code_reference(x, codebook))
  assert contains_kernel(lambda a, b: nearest_code(a, b, impl="interpret"), x, codebook)
  levels = jnp.stack([codebook, codebook[::-1]])
  assert_same_search(jax.jit(lambda a, b: residual_nearest_code(a, b, impl="interpret"))(
      x, levels), residual_nearest_code_reference(x, levels))
  grouped = jnp.stack([x, -x], axis=1)
  assert_same_search(jax.jit(lambda a, b: grouped_nearest_code(a, b, impl="interpret"))(
      grouped, levels), grouped_nearest_code_reference(grouped, levels))


def test_dispatcher_pallas_on_cpu_names_the_problem():
  x, codebook = normal(18, (4, 8)), normal(19, (9, 8))
  with pytest.raises(NotImplementedError, match="needs a TPU or GPU backend.*'cpu'"):
    nearest_code(x, codebook, impl="pallas")
  with pytest.raises(NotImplementedError, match="needs a TPU or GPU backend"):
    residual_nearest_code(x, codebook[None], impl="pallas")
  with pytest.raises(ValueError, match="not available for this kernel"):
    nearest_code(x, codebook, impl="cudnn")


def test_dispatcher_choice_by_platform(monkeypatch):
  for backend, gpu_serves, want in (("tpu", False, "tpu"), ("gpu", True, "gpu"),
                                    ("gpu", False, "xla"), ("cpu", True, "xla")):
    monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
    assert dispatch._choose(None, gpu_serves, 10) == want
    assert dispatch._choose("interpret", gpu_serves, 10) == "interpret"
    assert dispatch._choose("xla", gpu_serves, 10) == "xla"
    assert dispatch._choose(None, gpu_serves, 0) == "xla"  # empty input: nothing to launch
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  with pytest.raises(NotImplementedError, match="GPU kernel serves only bfloat16"):
    dispatch._choose("pallas", False, 10)


def test_dispatcher_honours_env_var_and_default_impl(monkeypatch):
  x, codebook = normal(20, (4, 8)), normal(21, (9, 8))
  search = lambda a, b: nearest_code(a, b)
  monkeypatch.setenv(ENV_VAR, "interpret")
  assert contains_kernel(search, x, codebook)
  with default_impl("xla"):  # the zoo default outranks the environment
    assert not contains_kernel(search, x, codebook)
  monkeypatch.setenv(ENV_VAR, "pallas")
  with pytest.raises(NotImplementedError, match="needs a TPU or GPU backend"):
    search(x, codebook)
  monkeypatch.delenv(ENV_VAR)
  with default_impl("interpret"):
    assert contains_kernel(search, x, codebook)
  assert not contains_kernel(search, x, codebook)


def test_empty_input_and_no_gradient():
  codebook = normal(22, (9, 8))
  ids, distances = nearest_code(jnp.zeros((0, 8)), codebook, impl="interpret")
  assert ids.shape == distances.shape == (0,)
  x = normal(23, (5, 8))
  grad = jax.grad(lambda a, b: nearest_code(a, b, impl="interpret")[1].sum(), argnums=(0, 1))(
      x, codebook)
  assert all(float(jnp.abs(g).sum()) == 0.0 for g in grad)


@pytest.mark.parametrize("call,match", [
    (lambda: nearest_code(jnp.zeros((8,)), jnp.zeros((4, 8))), r"x must be \[N, D\]"),
    (lambda: nearest_code(jnp.zeros((2, 8)), jnp.zeros((1, 4, 8))), r"codebook must be \[K, D\]"),
    (lambda: nearest_code(jnp.zeros((2, 8)), jnp.zeros((4, 6))), "D=8 but the codebook has D=6"),
    (lambda: nearest_code(jnp.zeros((2, 8)), jnp.zeros((0, 8))), "empty"),
    (lambda: nearest_code(jnp.zeros((2, 8)), jnp.zeros((4, 8)), metric="dot"), "unknown metric"),
    (lambda: residual_nearest_code(jnp.zeros((2, 8)), jnp.zeros((4, 8))),
     r"codebooks must be \[L, K, D\]"),
    (lambda: residual_nearest_code(jnp.zeros((2, 8)), jnp.zeros((2, 4, 5))), "D=8"),
    (lambda: grouped_nearest_code(jnp.zeros((2, 3, 8)), jnp.zeros((2, 4, 8))),
     "G=3 groups but there are 2 codebooks"),
    (lambda: grouped_nearest_code(jnp.zeros((2, 8)), jnp.zeros((2, 4, 8))),
     r"x must be \[N, G, D\]"),
])
def test_bad_shapes_and_metrics_raise(call, match):
  with pytest.raises(ValueError, match=match):
    call()


@pytest.mark.parametrize("call", [
    lambda: nearest_code(jnp.zeros((2, 8), jnp.int32), jnp.zeros((4, 8))),
    lambda: nearest_code(jnp.zeros((2, 8)), jnp.zeros((4, 8), jnp.int8)),
    lambda: residual_nearest_code(jnp.zeros((2, 8), jnp.int32), jnp.zeros((1, 4, 8))),
    lambda: grouped_nearest_code(jnp.zeros((2, 1, 8)), jnp.zeros((1, 4, 8), jnp.int32)),
])
def test_non_float_inputs_raise(call):
  with pytest.raises(TypeError, match="must be a float array"):
    call()
