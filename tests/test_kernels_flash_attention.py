"""Flash attention: kernels (TPU interpret mode on CPU) against the jnp reference.

The Mosaic GPU (Hopper) kernels run in Mosaic GPU interpret mode, bf16 only (what they take).

Tolerances. float32: the kernels and the reference differ only in summation order (online
softmax over key blocks), so outputs and gradients must agree to 1e-4 in relative l2 norm and
in max-abs relative to the largest reference entry. bfloat16: both sides round the softmax
weights to bf16 (eps 2**-8 = 0.4%) before the weighted sum, at different points (the kernel
rounds unnormalised block weights), so each is compared with a float32 computation on the
same bf16 inputs: the kernel must stay within 2% (about 5 bf16 eps; measured: about 0.25%
relative l2, 0.35% max-abs) in both measures, and within twice the XLA path's own relative
l2 error (plus 1e-3).
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax._src.pallas.mosaic_gpu.interpret.params import InterpretGPUParams

from models.layers.attention import dot_product_attention
from pallas_kernels import impl as impl_lib
from pallas_kernels.flash_attention import attention_reference
from pallas_kernels.flash_attention import dispatch
from pallas_kernels.flash_attention import flash_attention
from pallas_kernels.flash_attention import gpu
from pallas_kernels.flash_attention import key_padding_mask
from pallas_kernels.flash_attention import masks
from pallas_kernels.flash_attention import tpu

F32_TOL = 1e-4
BF16_TOL = 2e-2


def _qkv_ct(batch, seq_q, seq_k, heads, dim, dtype=jnp.float32, seed=0):
  keys = jax.random.split(jax.random.key(seed), 4)
  q = jax.random.normal(keys[0], (batch, seq_q, heads, dim)).astype(dtype)
  k = jax.random.normal(keys[1], (batch, seq_k, heads, dim)).astype(dtype)
  v = jax.random.normal(keys[2], (batch, seq_k, heads, dim)).astype(dtype)
  cotangent = jax.random.normal(keys[3], (batch, seq_q, heads, dim)).astype(dtype)
  return q, k, v, cotangent


@jax.jit(static_argnums=0)
def _output_and_grads(fn, q, k, v, cotangent):
  # One jit around forward and backward: interpret mode's cost is mostly compilation.
  out, vjp = jax.vjp(fn, q, k, v)
  return (out, *vjp(cotangent))


def _errors(actual, expected):
  """(relative l2 error, max-abs error relative to the largest expected entry).

  Both scales have a floor (RMS / peak 1e-2) so that an exactly-zero expectation, e.g. dq
  with a single key, is compared in absolute terms.
  """
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  scale = max(np.linalg.norm(expected), 1e-2 * np.sqrt(expected.size))
  peak = max(np.abs(expected).max(), 1e-2)
  return np.linalg.norm(actual - expected) / scale, np.abs(actual - expected).max() / peak


def _assert_close(actual, expected, tol, name):
  rel, peak = _errors(actual, expected)
  assert rel < tol and peak < tol, f"{name}: relative l2 {rel:.2e}, max-abs/peak {peak:.2e}"


def _kernel(causal=False, mask=None):
  return lambda q, k, v: flash_attention(q, k, v, causal=causal, mask=mask, impl="interpret")


def _reference(causal=False, mask=None):
  return lambda q, k, v: attention_reference(q, k, v, causal=causal, mask=mask)


def _check_against_reference(shape, *, causal=False, mask=None):
  q, k, v, cotangent = _qkv_ct(*shape)
  got = _output_and_grads(_kernel(causal, mask), q, k, v, cotangent)
  want = _output_and_grads(_reference(causal, mask), q, k, v, cotangent)
  for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
    assert a.shape == b.shape and a.dtype == b.dtype, name
    _assert_close(a, b, F32_TOL, name)
  return got


# (batch, S, T, heads, head dim)
@pytest.mark.parametrize("shape,causal", [
    ((2, 1, 1, 2, 64), False),
    ((1, 77, 77, 2, 64), True),
    ((1, 200, 200, 2, 64), False),
    ((1, 257, 257, 1, 64), True),
    ((1, 200, 200, 2, 128), True),
    ((1, 77, 77, 2, 32), False),
    ((1, 50, 50, 2, 16), True),
])
def test_kernel_matches_reference(shape, causal):
  _check_against_reference(shape, causal=causal)


@pytest.mark.parametrize("seq_q,seq_k", [(77, 200), (200, 33)])
def test_cross_attention_matches_reference(seq_q, seq_k):
  _check_against_reference((1, seq_q, seq_k, 2, 64))


def test_key_padding_matches_reference():
  # Flexible token counts: batch element 1 keeps 37 of 200 keys, so its second key block is
  # dead and skipped.
  mask = key_padding_mask(jnp.array([200, 37]), 200)
  _check_against_reference((2, 200, 200, 2, 64), mask=mask)


def test_key_padding_with_causal_matches_reference():
  mask = key_padding_mask(jnp.array([150]), 150)[:, :, :, :]
  _check_against_reference((1, 150, 150, 2, 64), causal=True, mask=mask)


def _video_mask(frames, tokens_per_frame, *, frame_causal):
  """[S, S] mask over frame-major video tokens: same frame, or (frame_causal) earlier frames."""
  frame = jnp.arange(frames * tokens_per_frame) // tokens_per_frame
  if frame_causal:
    return frame[:, None] >= frame[None, :]
  return frame[:, None] == frame[None, :]


@pytest.mark.parametrize("frame_causal", [False, True])
def test_video_block_mask_matches_reference(frame_causal):
  mask = _video_mask(4, 64, frame_causal=frame_causal)  # S = T = 256, two 128 blocks
  _check_against_reference((1, 256, 256, 2, 64), mask=mask)


def test_per_head_dense_mask_matches_reference():
  mask = jax.random.bernoulli(jax.random.key(7), 0.7, (1, 2, 130, 140))
  _check_against_reference((2, 130, 140, 2, 32), mask=mask)


def test_block_live_table_marks_dead_tiles():
  keep = masks.dense_tiles(_video_mask(4, 64, frame_causal=False)[None, None], 256, 256, 256,
                           256)
  table = np.asarray(masks.block_live_table(keep, 128, 128))[0, 0]
  np.testing.assert_array_equal(table, np.eye(2, dtype=np.int32))


def test_tile_schedule_repeats_the_last_live_block_for_dead_tiles():
  live = jnp.array([[0, 1, 0, 0, 1, 0]])
  # 2 * block to fetch + live: dead tiles before any live one fetch block 0.
  np.testing.assert_array_equal(masks.tile_schedule(live), [[0, 3, 2, 2, 9, 8]])


def test_fully_masked_rows_are_zero_with_zero_gradient():
  # Query rows 10..19 see no key; batch element 1 has no keys at all.
  seq = 40
  rows = jnp.ones((seq, seq), bool).at[10:20].set(False)
  mask = rows[None, None] & key_padding_mask(jnp.array([seq, 0]), seq)
  out, dq, dk, dv = _check_against_reference((2, seq, seq, 2, 32), mask=mask)
  dead = np.zeros((2, seq), bool)
  dead[0, 10:20] = True
  dead[1] = True
  assert np.all(np.asarray(out)[dead] == 0) and np.all(np.asarray(dq)[dead] == 0)
  assert np.all(np.abs(np.asarray(out)[~dead]) > 0)
  assert np.all(np.asarray(dk)[1] == 0) and np.all(np.asarray(dv)[1] == 0)


def test_reference_matches_model_attention_where_rows_have_keys():
  q, k, v, _ = _qkv_ct(2, 33, 45, 2, 16)
  mask = key_padding_mask(jnp.array([45, 20]), 45)
  _assert_close(attention_reference(q, k, v, mask=mask),
                dot_product_attention(q, k, v, mask=mask), 1e-5, "out")


def _check_bf16(kernel_fn, shape, *, causal=False, mask=None):
  q, k, v, cotangent = _qkv_ct(*shape, dtype=jnp.bfloat16)
  got = _output_and_grads(kernel_fn, q, k, v, cotangent)
  xla = _output_and_grads(_reference(causal, mask), q, k, v, cotangent)
  up = lambda x: x.astype(jnp.float32)
  truth = _output_and_grads(_reference(causal, mask), up(q), up(k), up(v), up(cotangent))
  for name, a, b, t in zip(("out", "dq", "dk", "dv"), got, xla, truth):
    assert a.dtype == jnp.bfloat16, name
    (kernel_rel, kernel_peak), xla_rel = _errors(a, t), _errors(b, t)[0]
    assert kernel_rel < BF16_TOL and kernel_peak < BF16_TOL, (name, kernel_rel, kernel_peak)
    assert kernel_rel < 2 * xla_rel + 1e-3, (name, kernel_rel, xla_rel)


def test_bf16_within_bf16_precision():
  mask = key_padding_mask(jnp.array([130, 100]), 130)
  _check_bf16(_kernel(causal=True, mask=mask), (2, 130, 130, 1, 64), causal=True, mask=mask)


# (batch, S, T, heads, head dim), causal, key lengths or None
@pytest.mark.parametrize("shape,causal,lengths", [
    ((2, 100, 100, 2, 64), True, (70, 0)),  # batch element 1 has no keys: zero rows
    ((1, 70, 150, 1, 128), False, None),
    ((1, 64, 64, 2, 32), False, (40,)),
])
def test_gpu_kernel_in_interpret_mode(shape, causal, lengths):
  mask = None if lengths is None else key_padding_mask(jnp.array(lengths), shape[2])
  kernel_fn = lambda q, k, v: gpu.flash_attention_gpu(q, k, v, causal=causal, mask=mask,
                                                      interpret=InterpretGPUParams())
  _check_bf16(kernel_fn, shape, causal=causal, mask=mask)
  if lengths is not None and 0 in lengths:
    q, k, v, _ = _qkv_ct(*shape, dtype=jnp.bfloat16)
    assert np.all(np.asarray(jax.jit(kernel_fn)(q, k, v))[lengths.index(0)] == 0)


@pytest.mark.parametrize("causal,dim", [(True, 32), (True, 64), (False, 128)])
def test_gpu_kernels_lower_to_mosaic_gpu(causal, dim):
  # No GPU here: lowering to Mosaic GPU checks layouts, transforms and wgmma shapes.
  spec = jax.ShapeDtypeStruct((2, 100, 2, dim), jnp.bfloat16)
  mask = key_padding_mask(jnp.array([100, 30]), 100)

  def fwd_bwd(q, k, v):
    fn = lambda q, k, v: gpu.flash_attention_gpu(q, k, v, causal=causal, mask=mask)
    out, vjp = jax.vjp(fn, q, k, v)
    return out, vjp(out)
  module = export.export(jax.jit(fwd_bwd), platforms=["cuda"])(spec, spec, spec).mlir_module()
  assert len(re.findall(r"custom_call @mosaic_gpu", module)) == 3  # forward, dq, dk+dv


@pytest.mark.parametrize("dtype,mask", [
    (jnp.float32, None), (jnp.bfloat16, jnp.ones((8, 8), bool))])
def test_gpu_kernel_refuses_what_it_lacks(dtype, mask):
  q, k, v = (jnp.zeros((1, 8, 1, 64), dtype),) * 3
  with pytest.raises(NotImplementedError, match="impl='cudnn'"):
    gpu.flash_attention_gpu(q, k, v, mask=mask)


@pytest.mark.parametrize("dtype,dim", [(jnp.float32, 64), (jnp.bfloat16, 128)])
def test_tpu_kernels_lower_to_mosaic(dtype, dim):
  # No TPU here: lowering to Mosaic checks block shapes and ops, not the TPU compiler.
  spec = jax.ShapeDtypeStruct((2, 200, 2, dim), dtype)
  for causal, mask in [(True, None), (False, key_padding_mask(jnp.array([200, 9]), 200)),
                       (False, _video_mask(4, 50, frame_causal=True))]:
    def fwd_bwd(q, k, v, causal=causal, mask=mask):
      fn = lambda q, k, v: tpu.flash_attention_tpu(q, k, v, causal=causal, mask=mask)
      out, vjp = jax.vjp(fn, q, k, v)
      return out, vjp(out)
    module = export.export(jax.jit(fwd_bwd), platforms=["tpu"])(spec, spec, spec).mlir_module()
    assert module.count("tpu_custom_call") == 3  # forward, dq, dk+dv


# Dispatcher.

def test_xla_impl_is_the_reference():
  q, k, v, _ = _qkv_ct(1, 20, 20, 2, 16)
  np.testing.assert_array_equal(flash_attention(q, k, v, causal=True, impl="xla"),
                                attention_reference(q, k, v, causal=True))


def test_automatic_impl_on_cpu_is_xla():
  q, k, v, _ = _qkv_ct(1, 20, 20, 2, 16)
  np.testing.assert_array_equal(flash_attention(q, k, v), attention_reference(q, k, v))


@pytest.mark.parametrize("backend,dtype,seq,expected", [
    ("cpu", jnp.bfloat16, 256, "xla"),
    ("gpu", jnp.bfloat16, 256, "cudnn"),
    ("gpu", jnp.float32, 256, "xla"),  # cuDNN flash attention takes 16-bit inputs only
    ("tpu", jnp.float32, 256, "pallas"),
    ("tpu", jnp.float32, 8, "xla"),  # less than one block
])
def test_automatic_choice_by_platform_and_shape(monkeypatch, backend, dtype, seq, expected):
  monkeypatch.setattr(jax, "default_backend", lambda: backend)
  q = jnp.zeros((1, seq, 2, 64), dtype)
  assert dispatch._automatic_impl(q, q, q) == expected


def test_cudnn_path_zeroes_rows_without_keys(monkeypatch):
  # No GPU here: stand jax.nn's XLA implementation in for cuDNN to check the wrapper, which
  # must turn jax.nn's uniform average over masked keys into the documented zeros.
  nn_attention = jax.nn.dot_product_attention
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(jax.nn, "dot_product_attention",
                      lambda *a, implementation, **kw: nn_attention(*a, **kw))
  q, k, v, _ = _qkv_ct(2, 24, 24, 2, 16, dtype=jnp.bfloat16)
  mask = key_padding_mask(jnp.array([24, 0]), 24) & jnp.ones((24, 24), bool).at[3:6].set(False)
  got = flash_attention(q, k, v, causal=True, mask=mask, impl="cudnn")
  want = attention_reference(q, k, v, causal=True, mask=mask)
  assert np.all(np.asarray(got[1]) == 0) and np.all(np.asarray(got[0, 3:6]) == 0)
  _assert_close(got, want, BF16_TOL, "out")


@pytest.mark.parametrize("impl,error", [("pallas", "impl='interpret'"), ("cudnn", "needs a GPU")])
def test_compiled_impls_refuse_cpu(impl, error):
  q, k, v, _ = _qkv_ct(1, 8, 8, 1, 16)
  with pytest.raises(RuntimeError, match=error):
    flash_attention(q, k, v, impl=impl)


def test_env_var_and_zoo_default_are_honoured(monkeypatch):
  q, k, v, _ = _qkv_ct(1, 8, 8, 1, 16)
  monkeypatch.setenv(impl_lib.ENV_VAR, "pallas")
  with pytest.raises(RuntimeError, match="impl='interpret'"):
    flash_attention(q, k, v)
  assert flash_attention(q, k, v, impl="xla").shape == q.shape  # the argument wins
  monkeypatch.delenv(impl_lib.ENV_VAR)
  with impl_lib.default_impl("cudnn"):
    with pytest.raises(RuntimeError, match="needs a GPU"):
      flash_attention(q, k, v)


def test_interpret_under_jit_and_grad():
  q, k, v, cotangent = _qkv_ct(1, 40, 40, 2, 16)
  mask = key_padding_mask(jnp.array([25]), 40)

  def loss(impl):  # the mask is an argument, so under jit the kernel sees a traced mask
    return lambda q, k, mask: jnp.sum(
        flash_attention(q, k, v, causal=True, mask=mask, impl=impl) * cotangent)
  got = jax.jit(jax.grad(loss("interpret"), argnums=(0, 1)))(q, k, mask)
  want = jax.grad(loss("xla"), argnums=(0, 1))(q, k, mask)
  for a, b in zip(got, want):
    _assert_close(a, b, F32_TOL, "grad")


# Bad inputs.

def _inputs(q_shape=(1, 8, 2, 16), k_shape=(1, 8, 2, 16), v_shape=None, dtype=jnp.float32):
  v_shape = k_shape if v_shape is None else v_shape
  return (jnp.zeros(q_shape, dtype), jnp.zeros(k_shape, dtype), jnp.zeros(v_shape, dtype))


@pytest.mark.parametrize("q_shape,k_shape,v_shape,match", [
    ((8, 2, 16), (8, 2, 16), None, "must be \\[B, S, H, D\\]"),
    ((1, 8, 2, 16), (1, 8, 3, 16), None, "must agree on batch, heads"),
    ((1, 8, 2, 16), (1, 8, 2, 32), None, "must agree on batch, heads and head dim"),
    ((1, 8, 2, 16), (1, 8, 2, 16), (1, 9, 2, 16), "same shape"),
])
def test_bad_shapes_raise(q_shape, k_shape, v_shape, match):
  with pytest.raises(ValueError, match=match):
    flash_attention(*_inputs(q_shape, k_shape, v_shape), impl="interpret")


def test_mixed_dtypes_raise():
  q, k, v = _inputs()
  with pytest.raises(TypeError, match="one floating dtype"):
    flash_attention(q.astype(jnp.bfloat16), k, v, impl="interpret")


def test_causal_cross_attention_raises():
  with pytest.raises(ValueError, match="S == T"):
    flash_attention(*_inputs(k_shape=(1, 9, 2, 16)), causal=True, impl="interpret")


def test_mask_wrong_shape_raises():
  with pytest.raises(ValueError, match="does not broadcast"):
    flash_attention(*_inputs(), mask=jnp.ones((1, 2, 8, 7), bool), impl="interpret")


def test_mask_wrong_rank_raises():
  with pytest.raises(ValueError, match="rank <= 4"):
    flash_attention(*_inputs(), mask=jnp.ones((1, 1, 2, 8, 8), bool), impl="interpret")


def test_mask_wrong_dtype_raises():
  with pytest.raises(TypeError, match="boolean"):
    flash_attention(*_inputs(), mask=jnp.ones((8, 8), jnp.float32), impl="interpret")


def test_unknown_impl_raises():
  with pytest.raises(ValueError, match="unknown kernel impl"):
    flash_attention(*_inputs(), impl="triton")


def test_additive_bias_runs_on_xla_whatever_the_default():
  # A relative-position bias is added to the scaled logits before the mask; no kernel takes
  # one, so a zoo default of "interpret" still runs XLA, and naming a kernel is an error.
  q, k, v = (jax.random.normal(jax.random.key(i), (2, 6, 3, 8)) for i in range(3))
  bias = jax.random.normal(jax.random.key(3), (1, 3, 6, 6))
  logits = jnp.einsum("bshd,bthd->bhst", q, k) * 0.5 + bias
  logits = jnp.where(jnp.tril(jnp.ones((6, 6), bool)), logits, -jnp.inf)
  want = jnp.einsum("bhst,bthd->bshd", jax.nn.softmax(logits, -1), v)
  with impl_lib.default_impl("interpret"):
    got = dot_product_attention(q, k, v, scale=0.5, causal=True, bias=bias)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  with pytest.raises(ValueError, match="takes no additive bias"):
    flash_attention(q, k, v, bias=bias, impl="interpret")
  with pytest.raises(ValueError, match="does not broadcast"):
    flash_attention(q, k, v, bias=bias[:, :, :4])
  with pytest.raises(TypeError, match="bias must be floating"):
    flash_attention(q, k, v, bias=bias > 0)
