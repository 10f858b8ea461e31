"""A multi-layer unidirectional LSTM in PyTorch's layout (gates i, f, g, o stacked in
`weight_ih` [4H, in], `weight_hh` [4H, H] and two biases), run over [B, T, D] by lax.scan.
The state is explicit, so a stream can be processed chunk by chunk."""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes


class LSTMLayer(nnx.Module):

  def __init__(self, in_dim: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / math.sqrt(hidden)  # torch's U(-1/sqrt(H), 1/sqrt(H)) for every tensor

    def uniform(shape, names):
      return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound),
                       **axes(*names))
    self.hidden = hidden
    self.weight_ih = uniform((4 * hidden, in_dim), ("mlp", "embed"))
    self.weight_hh = uniform((4 * hidden, hidden), ("mlp", None))
    self.bias_ih = uniform((4 * hidden,), ("mlp",))
    self.bias_hh = uniform((4 * hidden,), ("mlp",))

  def __call__(self, x, state):
    """x [B, T, in], state (h, c) [B, H] each -> (y [B, T, H], final state)."""
    inputs = x @ self.weight_ih[...].T.astype(x.dtype) + (self.bias_ih[...] + self.bias_hh[...])
    w_hh = self.weight_hh[...].T.astype(x.dtype)

    def step(carry, gates_x):
      h, c = carry
      i, f, g, o = jnp.split(gates_x + h @ w_hh, 4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
      h = jax.nn.sigmoid(o) * jnp.tanh(c)
      return (h, c), h

    state, ys = jax.lax.scan(step, state, jnp.swapaxes(inputs, 0, 1))
    return jnp.swapaxes(ys, 0, 1), state


class LSTM(nnx.Module):

  def __init__(self, dim: int, num_layers: int, *, rngs: nnx.Rngs):
    self.dim = dim
    self.layers = nnx.List([LSTMLayer(dim, dim, rngs=rngs) for _ in range(num_layers)])

  def zero_state(self, batch: int, dtype=jnp.float32):
    zeros = jnp.zeros((batch, self.dim), dtype)
    return tuple((zeros, zeros) for _ in self.layers)

  def __call__(self, x, state=None):
    """x [B, T, D] -> (y [B, T, D], per-layer (h, c) after the last step)."""
    state = self.zero_state(x.shape[0], x.dtype) if state is None else state
    new_state = []
    for layer, layer_state in zip(self.layers, state):
      x, layer_state = layer(x, layer_state)
      new_state.append(layer_state)
    return x, tuple(new_state)
