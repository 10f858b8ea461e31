"""The VAT-style 3D tokenizer: ids per scale and their bytes, prefix decoding, the triplane
sampler, the training forward's losses and gradients, saving/loading, bad inputs."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from safetensors.numpy import save_file

import zoo
from models.threed.vat import VAT, VATConfig, sample_plane
from zoo.convert import common


_encode = nnx.jit(lambda m, p, n: m.encode(p, n))


def _shapes(b=2, n=128, seed=0):
  """Points on spheres of different radii, their normals, and labelled queries."""
  rng = np.random.default_rng(seed)
  d = rng.normal(size=(b, n, 3))
  d /= np.linalg.norm(d, axis=-1, keepdims=True)
  radius = np.linspace(0.4, 0.8, b)[:, None, None]
  queries = rng.uniform(-1, 1, (b, 64, 3)).astype(np.float32)
  labels = (np.linalg.norm(queries, axis=-1) < radius[..., 0]).astype(np.float32)
  return (radius * d).astype(np.float32), d.astype(np.float32), queries, labels


@pytest.fixture(scope="module")
def tiny():
  return zoo.create("vat_tiny")


def test_ids_per_scale_bytes_and_prefix_decoding(tiny):
  points, normals, queries, _ = _shapes()
  ids = _encode(tiny, points, normals)
  assert [i.shape for i in ids] == [(2, 1), (2, 4), (2, 16)]
  assert all(i.dtype == jnp.int32 and int(i.max()) < 64 for i in ids)
  assert tiny.bytes_per_shape == 21 * 6 / 8 and tiny.bytes_for_scales(2) == 5 * 6 / 8
  decode = nnx.jit(lambda m, ids: m.decode(ids))
  full, coarse = decode(tiny, ids), decode(tiny, ids[:1])
  assert full.shape == coarse.shape == (2, 3, 8, 8, 8)
  assert not np.allclose(full, coarse)
  forward = nnx.jit(lambda m, p, q, n: m(p, queries=q, normals=n))(tiny, points, queries, normals)
  assert "losses" not in forward and forward["logits"].shape == (2, 64)
  meshes = tiny.mesh(ids, resolution=8)
  assert len(meshes) == 2 and all(v.shape[1:] == (3,) for v, _ in meshes)


def test_bilinear_plane_sampling_is_exact_on_linear_fields():
  r = 9
  grid = np.linspace(-1, 1, r)
  u, v = np.meshgrid(grid, grid, indexing="ij")
  plane = np.stack([2 * u - v + 0.5, u * 0 + 3.0], -1)[None].astype(np.float32)  # [1, R, R, 2]
  uv = np.random.default_rng(0).uniform(-1, 1, (1, 50, 2)).astype(np.float32)
  got = np.asarray(sample_plane(jnp.asarray(plane), jnp.asarray(uv)))
  np.testing.assert_allclose(got[..., 0], 2 * uv[..., 0] - uv[..., 1] + 0.5, atol=1e-5)
  np.testing.assert_allclose(got[..., 1], 3.0, atol=1e-6)
  corners = np.array([[[-1, -1], [1, 1], [-1, 1]]], np.float32)
  np.testing.assert_allclose(np.asarray(sample_plane(jnp.asarray(plane), corners))[0, :, 0],
                             [-0.5, 1.5, -2.5], atol=1e-6)


def test_training_forward_reaches_every_part_and_learns_two_shapes():
  # No scale dropout here, so that every step trains the full-rate reconstruction.
  cfg = dataclasses.replace(zoo.registry.get("vat_tiny").config, scale_dropout=0.0)
  model = VAT(cfg, rngs=nnx.Rngs(0))
  points, normals, queries, labels = _shapes()
  opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
  parts = ("point_embed", "normal_proj", "encoder_layers", "mean_fc", "quantizer",
           "decoder_layers", "plane_queries", "head_out")

  @nnx.jit
  def step(model, opt, key):
    def loss_fn(m):  # a posterior draw each step (train=True)
      out = m(points, queries=queries, labels=labels, normals=normals, train=True,
              rngs=nnx.Rngs(sample=key))
      return out["losses"]["occupancy_bce"] + 1e-4 * out["kl"].mean() + out["quantizer_loss"]
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss, {k: optax.tree.norm(getattr(grads, k)) for k in parts}

  losses = []
  for i in range(60):
    loss, norms = step(model, opt, jax.random.key(i))
    if i == 0:
      assert all(float(v) > 0 for v in norms.values()), norms
    losses.append(float(loss))
  assert losses[-1] < 0.6 * losses[0], losses[::10]


def test_save_and_load_under_nnx_paths(tiny, tmp_path):
  state = {k: np.asarray(v[...]) for k, v in common.model_params(tiny).items()}
  save_file(state, str(tmp_path / "vat.safetensors"))
  loaded = zoo.from_pretrained("vat_tiny", checkpoint=str(tmp_path / "vat.safetensors"))
  points, normals, _, _ = _shapes()
  for a, b in zip(_encode(loaded, points, normals), _encode(tiny, points, normals)):
    np.testing.assert_array_equal(a, b)
  del state["head_out.bias"]
  save_file(state, str(tmp_path / "bad.safetensors"))
  with pytest.raises(common.CheckpointMismatchError, match="head_out.bias"):
    zoo.from_pretrained("vat_tiny", checkpoint=str(tmp_path / "bad.safetensors"))


def test_bad_inputs_and_configs(tiny):
  points, normals, _, _ = _shapes()
  with pytest.raises(ValueError, match="normals"):
    tiny.encode(points)
  with pytest.raises(ValueError, match="must match"):
    tiny.encode(points, normals[:, :10])
  with pytest.raises(ValueError, match="at least 16"):
    tiny.encode(points[:, :8], normals[:, :8])
  with pytest.raises(ValueError, match="normalised"):
    tiny.encode(points * 2, normals)
  with pytest.raises(ValueError, match="finest scale"):
    VAT(VATConfig(num_tokens=16, scales=(1, 4, 8), num_inputs=64), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="expected ids"):
    tiny.decode(())
  with pytest.raises(ValueError, match="rngs"):
    tiny(points, queries=points, normals=normals, train=True)
