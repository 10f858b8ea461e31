"""Pure-jnp nearest-code search: the semantics every kernel is tested against.

Distances are built as `score + row term`, where the score is the only part that depends on the
code and is what the argmin runs over:
  l2:     score = ||c||^2 - 2 x.c,  distance = max(||x||^2 + score_min, 0)   (squared euclidean)
  cosine: score = -x^.c^,           distance = 1 + score_min = 1 - cos(x, c)
with x^ = x / max(||x||, 1e-12) (torch F.normalize). Leaving ||x||^2 out of the argmin makes the
ids independent of its rounding; the clamp at 0 only hides cancellation error in the distance.
Everything runs in float32 (bf16 inputs are upcast first; their products are exact in float32),
dot products at `Precision.HIGHEST`. Ties go to the lowest id (`jnp.argmin`). NaN inputs are not
checked for (no host sync): they give NaN distances and unspecified ids.
"""
import jax
import jax.numpy as jnp

METRICS = ("l2", "cosine")


def l2_normalize(x, eps: float = 1e-12):
  # torch.nn.functional.normalize: x / max(||x||, eps).
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def prepare(x, codebook, metric: str):
  """Upcasts to float32 and, for "cosine", normalises; shared by the reference and the kernels."""
  x, codebook = x.astype(jnp.float32), codebook.astype(jnp.float32)
  if metric == "cosine":
    x, codebook = l2_normalize(x), l2_normalize(codebook)
  return x, codebook


def squared_norms(v):
  """||v||^2 along the last axis, float32."""
  return jnp.sum(v * v, axis=-1)


def scores(x, codebook, metric: str):
  """The argmin target [N, K] for prepared float32 x [N, D] and codebook [K, D]."""
  dots = jnp.einsum("nd,kd->nk", x, codebook, precision=jax.lax.Precision.HIGHEST)
  if metric == "cosine":
    return -dots
  return squared_norms(codebook)[None, :] - 2.0 * dots


def distances_from_scores(x, best_scores, metric: str):
  """Adds back the per-token term the argmin left out; x is the prepared float32 input."""
  if metric == "cosine":
    return 1.0 + best_scores
  return jnp.maximum(squared_norms(x) + best_scores, 0.0)


def nearest_code_reference(x, codebook, *, metric: str = "l2"):
  """Nearest code by materialising all [N, K] scores.

  Args:
    x: [N, D] float inputs.
    codebook: [K, D] float codes.
    metric: "l2" (squared euclidean) or "cosine" (1 - cosine similarity).

  Returns:
    (ids int32 [N], distances float32 [N]).
  """
  x, codebook = prepare(x, codebook, metric)
  s = scores(x, codebook, metric)
  ids = jnp.argmin(s, axis=1).astype(jnp.int32)
  best = jnp.take_along_axis(s, ids[:, None], axis=1)[:, 0]
  return ids, distances_from_scores(x, best, metric)


def residual_nearest_code_reference(x, codebooks):
  """Residual quantisation by squared l2: r_0 = x, id_l = nearest(r_l, codebooks[l]),
  r_{l+1} = r_l - codebooks[l][id_l].

  Args:
    x: [N, D] float inputs.
    codebooks: [L, K, D] float codes, one codebook per level.

  Returns:
    (ids int32 [N, L], distances float32 [N, L]); distances[:, l] = ||r_l - c_{id_l}||^2.
  """
  residual, codebooks = prepare(x, codebooks, "l2")
  all_ids, all_distances = [], []
  for level_codes in codebooks:
    ids, distances = nearest_code_reference(residual, level_codes, metric="l2")
    residual = residual - jnp.take(level_codes, ids, axis=0)
    all_ids.append(ids)
    all_distances.append(distances)
  return jnp.stack(all_ids, axis=1), jnp.stack(all_distances, axis=1)


def grouped_nearest_code_reference(x, codebooks, *, metric: str = "l2"):
  """Each group searches its own codebook: x [N, G, D], codebooks [G, K, D].

  Returns:
    (ids int32 [N, G], distances float32 [N, G]).
  """
  search = jax.vmap(lambda xg, cg: nearest_code_reference(xg, cg, metric=metric),
                    in_axes=(1, 0), out_axes=1)
  return search(x, codebooks)
