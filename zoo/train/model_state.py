"""A model rebuilt from the training state's parts: graph, parameters, buffers a training
forward updates (nnx.BatchStat, e.g. EMA codebooks), and the rest."""
import jax
import jax.numpy as jnp
from flax import nnx


def merge_model(graphdef, params, rest, batch_stats=None) -> nnx.Module:
  """The model; its buffers are fresh Variables of the current trace, so that a training
  forward under jax.grad may update them (and the caller reads them back with nnx.state)."""
  if batch_stats is None:
    return nnx.merge(graphdef, params, rest)
  return nnx.merge(graphdef, params, jax.tree.map(jnp.asarray, batch_stats), rest)
