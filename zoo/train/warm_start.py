"""Where stage 2 starts: the stage-1 run's weights plus MaskGIT-VQGAN's pixel decoder.

The official stage 2 loads the stage-1 checkpoint and copies the VQGAN's quantizer and decoder
into `pixel_quantize` / `pixel_decoder` (its encoder is dropped). Both copies here check that
every copied parameter exists in the model with the same shape.
"""
import jax
from flax import nnx

from zoo.train.optimizer import path_name


def _copy_params(source: nnx.Module, target: nnx.Module, what: str) -> int:
  src = dict(jax.tree_util.tree_flatten_with_path(nnx.state(source, nnx.Param))[0])
  dst_state = nnx.state(target, nnx.Param)
  dst_flat = dict(jax.tree_util.tree_flatten_with_path(dst_state)[0])
  missing = sorted(path_name(p) for p in src if p not in dst_flat)
  mismatched = sorted(f"{path_name(p)}: {v.shape} vs {dst_flat[p].shape}"
                      for p, v in src.items() if p in dst_flat and v.shape != dst_flat[p].shape)
  if missing or mismatched:
    raise ValueError(f"{what} does not fit the model: missing {missing[:8]}, "
                     f"shape mismatches {mismatched[:8]}")
  new_state = jax.tree_util.tree_map_with_path(lambda p, v: src.get(p, v), dst_state)
  nnx.update(target, new_state)
  return len(src)


def load_stage1_weights(model: nnx.Module, workdir) -> int:
  """Copies the EMA weights of the stage-1 run in `workdir` into `model`; returns the count."""
  from zoo.train.trainer import load_trained_model  # the trainer imports this module
  return _copy_params(load_trained_model(workdir, weights="ema"), model,
                      f"the stage-1 run in {workdir}")


def load_pixel_decoder(model: nnx.Module, vqgan: nnx.Module) -> int:
  """Copies the VQGAN's quantizer and decoder into the model's pixel_quantize / pixel_decoder."""
  if getattr(model, "pixel_decoder", None) is None:
    raise ValueError("the model has no pixel decoder (a legacy TiTok with finetune_decoder)")
  return (_copy_params(vqgan.quantize, model.pixel_quantize, "the VQGAN quantizer")
          + _copy_params(vqgan.decoder, model.pixel_decoder, "the VQGAN decoder"))
