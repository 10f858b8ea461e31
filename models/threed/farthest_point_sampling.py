"""Farthest-point sampling, in the order torch_cluster.fps picks points.

From a start point, each step takes the point whose squared distance to the nearest point
taken so far is largest (the first such index on ties, as torch's argmax). torch_cluster
starts at a random point by default; here the start is index 0 unless a key draws one, so the
latent queries of 3DShape2VecSet-style encoders are deterministic for tests and evaluation.
"""
import jax
import jax.numpy as jnp


def _squared_distances(points, index):
  return jnp.sum(jnp.square(points - points[index]), axis=-1)


def _sample_one(points, start, num_samples):
  def step(i, carry):
    picked, nearest = carry
    farthest = jnp.argmax(nearest).astype(jnp.int32)
    picked = picked.at[i].set(farthest)
    return picked, jnp.minimum(nearest, _squared_distances(points, farthest))

  picked = jnp.zeros((num_samples,), jnp.int32).at[0].set(start)
  picked, _ = jax.lax.fori_loop(1, num_samples, step,
                                (picked, _squared_distances(points, start)))
  return picked


def farthest_point_sample(points, num_samples: int, *, key=None):
  """Indices [B, num_samples] into points [B, N, 3]; starts at 0, or where `key` draws."""
  b, n = points.shape[:2]
  if not 0 < num_samples <= n:
    raise ValueError(f"cannot sample {num_samples} of {n} points")
  if key is None:
    start = jnp.zeros((b,), jnp.int32)
  else:
    start = jax.random.randint(key, (b,), 0, n, jnp.int32)
  return jax.vmap(_sample_one, in_axes=(0, 0, None))(points.astype(jnp.float32), start,
                                                      num_samples)


def gather_points(points, indices):
  """points [B, N, C] at indices [B, M] -> [B, M, C]."""
  return jnp.take_along_axis(points, indices[..., None], axis=1)
