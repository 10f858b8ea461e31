"""The mesh every training run uses: axes (data, fsdp, model), whatever the device count."""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")  # the batch is split over every replica of the model


def make_mesh(mesh_config) -> Mesh:
  """`mesh_config` has sizes for data/fsdp/model; one size may be -1 (the remaining devices)."""
  devices = jax.devices()
  sizes = [int(mesh_config.get(axis, 1)) for axis in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"at most one mesh axis may be -1; got {dict(zip(MESH_AXES, sizes))}")
  known = int(np.prod([s for s in sizes if s != -1]))
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) != len(devices):
    raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not use the {len(devices)} devices")
  return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def global_batch(local_batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles each process's local rows into one global array sharded over the batch axes."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local_batch)
