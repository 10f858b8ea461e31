"""Tile sizes and zero padding shared by the kernels."""
import jax.numpy as jnp

LANES = 128  # TPU vector lane width: the last dim of a block.
SUBLANES = 8  # TPU sublanes: the second-to-last dim of a block.


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def pad_axis(array, axis: int, size: int, value=0):
  """Pads `axis` at its end to `size` (zeros by default: they change no dot product or norm)."""
  extra = size - array.shape[axis]
  if extra == 0:
    return array
  widths = [(0, 0)] * array.ndim
  widths[axis] = (0, extra)
  return jnp.pad(array, widths, constant_values=value)


def token_block(num_tokens: int, block_tokens: int) -> int:
  """Token tile: `block_tokens` unless the whole (sublane-rounded) input is smaller."""
  return min(block_tokens, round_up(num_tokens, SUBLANES))


def code_block(num_codes: int, block_codes: int) -> int:
  """Code tile: `block_codes` unless the whole (lane-rounded) codebook is smaller."""
  return min(block_codes, round_up(num_codes, LANES))
