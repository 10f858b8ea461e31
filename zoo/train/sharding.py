"""The mesh every training run uses, and how parameters, optimizer state and batches map onto it.

One mesh with axes (data, fsdp, model) over all devices of all processes, in GSPMD "auto" mode
project-wide. The batch is split over data x fsdp. Parameters carry logical axis names
(`models.layers.axes`); the rules below turn them into PartitionSpecs:
  * tensor parallel: logical `mlp`, `qkv`, `heads` dims go to `model` (when divisible);
  * FSDP: one more dim goes to `fsdp`, the `embed` dim when divisible, else the largest
    divisible one; tensors under `fsdp_min_size` elements stay replicated (norms, biases).
With fsdp = model = 1 this is plain data parallelism. Optimizer state follows its parameters.
"""
import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from models.layers.axes import LOGICAL_AXES

MESH_AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")
TENSOR_PARALLEL_AXES = ("mlp", "qkv", "heads")
FSDP_MIN_SIZE = 2 ** 14


def make_mesh(mesh_config) -> Mesh:
  """`mesh_config` has sizes for data/fsdp/model; one size may be -1 (the remaining devices)."""
  devices = jax.devices()
  sizes = [int(mesh_config.get(axis, 1)) for axis in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"at most one mesh axis may be -1; got {dict(zip(MESH_AXES, sizes))}")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"{len(devices)} devices do not divide into {dict(zip(MESH_AXES, sizes))}")
    sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) != len(devices):
    raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not use the {len(devices)} devices")
  return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def param_spec(logical_axes, shape, mesh: Mesh, *, fsdp_min_size: int = FSDP_MIN_SIZE) -> P:
  logical_axes = tuple(logical_axes or (None,) * len(shape))
  if len(logical_axes) != len(shape):
    raise ValueError(f"logical axes {logical_axes} do not match shape {shape}")
  spec = [None] * len(shape)
  tp, fsdp = mesh.shape["model"], mesh.shape["fsdp"]
  if tp > 1:
    for i, name in enumerate(logical_axes):
      if name in TENSOR_PARALLEL_AXES and shape[i] % tp == 0:
        spec[i] = "model"
        break
  if fsdp > 1 and int(np.prod(shape)) >= fsdp_min_size:
    free = [i for i in range(len(shape)) if spec[i] is None and shape[i] % fsdp == 0]
    embed = [i for i in free if logical_axes[i] == "embed"]
    if embed or free:
      spec[embed[0] if embed else max(free, key=lambda i: shape[i])] = "fsdp"
  return P(*spec)


def param_shardings(params: nnx.State, mesh: Mesh):
  """A NamedSharding per parameter (same tree as `params`), from its logical axes."""
  def one(variable):
    spec = param_spec(variable.get_metadata().get(LOGICAL_AXES), variable.shape, mesh)
    return variable.replace(NamedSharding(mesh, spec))
  return jax.tree.map(one, params, is_leaf=lambda x: isinstance(x, nnx.Variable))


def optimizer_shardings(optimizer, opt_state, params_sharding, mesh: Mesh):
  """Optimizer state shaped like the parameters (Adam moments) is sharded like them.

  Frozen parameters (optax.multi_transform with set_to_zero) hold no state: their places stay
  empty `MaskedNode`s.
  """
  return optax.tree_map_params(
      optimizer, lambda state, sharding: state if _is_masked(state) else sharding, opt_state,
      params_sharding, transform_non_params=lambda _: replicated(mesh), is_leaf=_is_masked)


def _is_masked(x) -> bool:
  return isinstance(x, optax.MaskedNode)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES))


def global_batch(local_batch: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles each process's local rows into one global array sharded over the batch axes."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local_batch)


def shard_eval_batch(images: np.ndarray, mesh: Mesh) -> tuple[jax.Array, jax.Array]:
  """An eval batch every process holds in full -> (images, valid) sharded over the batch axes.

  Each process contributes only its own block of rows, so the batch's work is split across all
  devices of all processes; rows padded to fill the devices have valid=False.
  """
  devices = mesh.shape["data"] * mesh.shape["fsdp"]
  rows = -(-len(images) // devices) * devices
  valid = np.arange(rows) < len(images)
  images = np.concatenate([images, np.zeros((rows - len(images), *images.shape[1:]),
                                            images.dtype)])
  per_process = rows // jax.process_count()
  mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)
  return global_batch(images[mine], mesh), global_batch(valid[mine], mesh)


def bytes_per_device(tree) -> int:
  """The largest number of bytes any one device holds of `tree` (for memory checks)."""
  per_device: dict = {}
  for leaf in jax.tree.leaves(tree):
    for shard in leaf.addressable_shards:
      per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
  return max(per_device.values())
