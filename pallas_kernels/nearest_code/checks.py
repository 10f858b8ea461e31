"""Input validation shared by the dispatcher and the kernels: errors that name the problem."""
import jax.numpy as jnp

from pallas_kernels.nearest_code.reference import METRICS


def check_metric(metric):
  if metric not in METRICS:
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def check_float(name, array):
  if not jnp.issubdtype(array.dtype, jnp.floating):
    raise TypeError(f"{name} must be a float array (float32 or bfloat16), got {array.dtype}")


def check_rank(name, array, rank, layout):
  if array.ndim != rank:
    raise ValueError(f"{name} must be {layout}, got shape {array.shape}")


def check_search(x, codebook, metric):
  """x [N, D], codebook [K, D]."""
  check_metric(metric)
  check_rank("x", x, 2, "[N, D]")
  check_rank("codebook", codebook, 2, "[K, D]")
  check_float("x", x)
  check_float("codebook", codebook)
  if x.shape[1] != codebook.shape[1]:
    raise ValueError(f"x has D={x.shape[1]} but the codebook has D={codebook.shape[1]}")
  if codebook.shape[0] == 0:
    raise ValueError("the codebook is empty (K=0)")


def check_residual(x, codebooks):
  """x [N, D], codebooks [L, K, D]."""
  check_rank("x", x, 2, "[N, D]")
  check_rank("codebooks", codebooks, 3, "[L, K, D]")
  check_float("x", x)
  check_float("codebooks", codebooks)
  if x.shape[1] != codebooks.shape[2]:
    raise ValueError(f"x has D={x.shape[1]} but the codebooks have D={codebooks.shape[2]}")
  if codebooks.shape[0] == 0 or codebooks.shape[1] == 0:
    raise ValueError(f"need at least one level and one code, got codebooks {codebooks.shape}")


def check_grouped(x, codebooks, metric):
  """x [N, G, D], codebooks [G, K, D]."""
  check_metric(metric)
  check_rank("x", x, 3, "[N, G, D]")
  check_rank("codebooks", codebooks, 3, "[G, K, D]")
  check_float("x", x)
  check_float("codebooks", codebooks)
  if x.shape[1] != codebooks.shape[0]:
    raise ValueError(f"x has G={x.shape[1]} groups but there are {codebooks.shape[0]} codebooks")
  if x.shape[2] != codebooks.shape[2]:
    raise ValueError(f"x has D={x.shape[2]} but the codebooks have D={codebooks.shape[2]}")
  if codebooks.shape[1] == 0:
    raise ValueError("the codebooks are empty (K=0)")
