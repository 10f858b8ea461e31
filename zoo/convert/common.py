"""Name tables from official (PyTorch) tensors to NNX parameters, and the checked loader.

A table is a list of `Rule(torch_name, nnx_path, transform)`. Loading checks that every tensor
of the checkpoint is used, every parameter of the model is filled, and every shape agrees; any
mismatch is one error that lists all the offending names.
"""
import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np
from flax import nnx


class CheckpointMismatchError(ValueError):
  pass


@dataclasses.dataclass(frozen=True)
class Transform:
  name: str
  to_jax: Callable[[np.ndarray], np.ndarray]
  torch_shape: Callable[[tuple], tuple]  # the official shape expected for a given NNX shape


IDENTITY = Transform("identity", lambda a: a, lambda s: tuple(s))
# torch Linear [out, in] -> kernel [in, out].
LINEAR = Transform("linear", lambda a: a.T, lambda s: (s[1], s[0]))
# torch Conv2d [out, in, kh, kw] -> [kh, kw, in, out].
CONV2D = Transform("conv2d", lambda a: a.transpose(2, 3, 1, 0), lambda s: (s[3], s[2], s[0], s[1]))
# torch Conv3d [out, in, kt, kh, kw] -> [kt, kh, kw, in, out].
CONV3D = Transform("conv3d", lambda a: a.transpose(2, 3, 4, 1, 0),
                   lambda s: (s[4], s[3], s[0], s[1], s[2]))
# A 1x1 Conv2d used as a per-token Dense: [out, in, 1, 1] -> [in, out].
CONV1X1_AS_DENSE = Transform(
    "conv1x1_as_dense", lambda a: a.reshape(a.shape[0], a.shape[1]).T,
    lambda s: (s[1], s[0], 1, 1))


@dataclasses.dataclass(frozen=True)
class Rule:
  torch_name: str
  path: str  # dotted NNX path, e.g. "encoder.transformer.0.ln_1.scale"
  transform: Transform = IDENTITY


def linear_rules(torch_prefix: str, path: str, transform=LINEAR) -> list[Rule]:
  return [Rule(f"{torch_prefix}.weight", f"{path}.kernel", transform),
          Rule(f"{torch_prefix}.bias", f"{path}.bias")]


def multihead_attention_rules(torch_prefix: str, path: str) -> list[Rule]:
  """torch.nn.MultiheadAttention (q|k|v packed in one [3W, W] matrix) -> MultiheadAttention."""
  return ([Rule(f"{torch_prefix}.in_proj_weight", f"{path}.in_proj.kernel", LINEAR),
           Rule(f"{torch_prefix}.in_proj_bias", f"{path}.in_proj.bias")]
          + linear_rules(f"{torch_prefix}.out_proj", f"{path}.out_proj"))


def norm_rules(torch_prefix: str, path: str) -> list[Rule]:
  return [Rule(f"{torch_prefix}.weight", f"{path}.scale"),
          Rule(f"{torch_prefix}.bias", f"{path}.bias")]


def model_params(model: nnx.Module) -> dict[str, nnx.Variable]:
  """Dotted path -> Variable, for every Variable of the model (Params and any buffers)."""
  return {".".join(str(p) for p in path): node for path, node in nnx.iter_graph(model)
          if isinstance(node, nnx.Variable)}


def expected_torch_shapes(model: nnx.Module, table: list[Rule]) -> dict[str, tuple]:
  """The official {name: shape} this model expects (works on an nnx.eval_shape model)."""
  params = model_params(model)
  return {r.torch_name: tuple(r.transform.torch_shape(tuple(params[r.path].shape)))
          for r in table if r.path in params}


def load_state_dict(model: nnx.Module, state_dict: dict, table: list[Rule], *, model_name: str):
  """Fills `model` in place from `state_dict` ({official name: array}) through `table`."""
  params = model_params(model)
  problems = []
  missing = sorted(r.torch_name for r in table if r.torch_name not in state_dict)
  unused = sorted(set(state_dict) - {r.torch_name for r in table})
  unmapped = sorted(set(params) - {r.path for r in table})
  unknown = sorted(r.path for r in table if r.path not in params)
  if missing:
    problems.append(f"missing from the checkpoint ({len(missing)}): {', '.join(missing)}")
  if unused:
    problems.append(f"unexpected in the checkpoint ({len(unused)}): {', '.join(unused)}")
  if unmapped or unknown:
    problems.append(f"converter table out of date: unfilled {unmapped}, unknown {unknown}")
  values = {}
  for rule in table:
    if rule.torch_name not in state_dict or rule.path not in params:
      continue
    array = np.asarray(state_dict[rule.torch_name])
    target = tuple(params[rule.path].shape)
    want = tuple(rule.transform.torch_shape(target))
    if array.shape != want:
      problems.append(f"shape mismatch for {rule.torch_name}: checkpoint {array.shape}, "
                      f"model expects {want}")
      continue
    if not np.all(np.isfinite(array.astype(np.float32))):
      problems.append(f"{rule.torch_name} contains NaN or Inf")
      continue
    values[rule.path] = rule.transform.to_jax(array)
  if problems:
    raise CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  for path, value in values.items():
    params[path].set_value(jnp.asarray(value, dtype=params[path].dtype))
