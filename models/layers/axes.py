"""Logical axis names carried by every parameter.

The names live in a Variable metadata field of our own (`logical_axes`) rather than in Flax's
`out_sharding`, so that creating a model never needs a mesh; the trainer's sharding rules map
them onto the (data, fsdp, model) mesh.
"""

LOGICAL_AXES = "logical_axes"


def axes(*names: str | None) -> dict:
  """Metadata for `kernel_metadata=`/`bias_metadata=`/nnx.Param(**...): one name per dimension."""
  return {LOGICAL_AXES: tuple(names)}
