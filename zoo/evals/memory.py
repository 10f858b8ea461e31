"""Memory a compiled program needs, from XLA's own accounting (no run, no allocation).

`compiled_memory` lowers and compiles `fn` for the given shapes (arrays or
jax.ShapeDtypeStruct) and reads `memory_analysis()`: arguments, outputs, temporaries and
code. `peak_bytes` is their sum less aliased buffers, the device memory the program holds at
its high-water mark. `model_memory` does the same for a model method without materialising
the model's weights (an nnx.eval_shape model works).
"""
import jax
from flax import nnx

FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
          "alias_size_in_bytes", "generated_code_size_in_bytes")


def compiled_memory(fn, *args) -> dict:
  analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
  out = {field: int(getattr(analysis, field, 0) or 0) for field in FIELDS}
  out["peak_bytes"] = (out["argument_size_in_bytes"] + out["output_size_in_bytes"]
                       + out["temp_size_in_bytes"] - out["alias_size_in_bytes"])
  return out


def model_memory(model: nnx.Module, method, *args) -> dict:
  """`compiled_memory` of `method(model, *args)` with the model's state as an argument."""
  graphdef, state = nnx.split(model)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)

  def run(state, *inputs):
    return method(nnx.merge(graphdef, state), *inputs)

  return compiled_memory(run, abstract, *args)
