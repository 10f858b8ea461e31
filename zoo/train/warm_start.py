"""Where stage 2 starts: the stage-1 run's weights plus MaskGIT-VQGAN's pixel decoder.

The official stage 2 loads the stage-1 checkpoint and copies the VQGAN's quantizer and decoder
into `pixel_quantize` / `pixel_decoder` (its encoder is dropped). Here the copies go straight
into the (sharded) training parameters: each source array is placed with its target's
sharding, and every copied parameter must exist in the target with the same shape.
"""
import jax
from flax import nnx

from zoo.train.optimizer import path_name
from zoo.train.train_state import load_trained_model


def _flat(tree) -> dict:
  return dict(jax.tree_util.tree_flatten_with_path(tree)[0])


def copy_params(source: nnx.Module, params, prefix: tuple[str, ...], what: str):
  """`params` (an nnx.State of arrays) with the module under `prefix` replaced by `source`'s."""
  target = params
  for key in prefix:
    target = target[key]
  src, dst = _flat(nnx.state(source, nnx.Param)), _flat(target)
  missing = sorted(path_name(p) for p in src if p not in dst)
  mismatched = sorted(f"{path_name(p)}: {v.shape} vs {dst[p].shape}"
                      for p, v in src.items() if p in dst and v.shape != dst[p].shape)
  if missing or mismatched:
    raise ValueError(f"{what} does not fit the model: missing {missing[:8]}, "
                     f"shape mismatches {mismatched[:8]}")

  def place(path, leaf):
    inner = path[len(prefix):]
    if path[:len(prefix)] != tuple(jax.tree_util.DictKey(k) for k in prefix) or inner not in src:
      return leaf
    return jax.device_put(src[inner].astype(leaf.dtype), leaf.sharding)

  return jax.tree_util.tree_map_with_path(place, params)


def load_stage1_weights(params, workdir):
  """`params` with every module of the stage-1 run in `workdir` (its EMA weights)."""
  return copy_params(load_trained_model(workdir, weights="ema"), params, (),
                     f"the stage-1 run in {workdir}")


def load_pixel_decoder(params, vqgan: nnx.Module):
  """`params` with the VQGAN's quantizer and decoder as pixel_quantize / pixel_decoder."""
  if "pixel_decoder" not in params:
    raise ValueError("the model has no pixel decoder (a legacy TiTok with finetune_decoder)")
  params = copy_params(vqgan.quantize, params, ("pixel_quantize",), "the VQGAN quantizer")
  return copy_params(vqgan.decoder, params, ("pixel_decoder",), "the VQGAN decoder")


def load_base_tokenizer(params, workdir):
  """`params` with params["base"] from the flexible tokenizer run in `workdir` (EMA weights):
  the frozen base under a halting head (models/image/adaptive_length.py)."""
  if "base" not in params:
    raise ValueError("base_from needs a model with a `base` tokenizer (an adaptive-length model)")
  return copy_params(load_trained_model(workdir, weights="ema"), params, ("base",),
                     f"the base tokenizer run in {workdir}")
