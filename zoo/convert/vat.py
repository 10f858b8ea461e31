"""VAT has no official checkpoints: its weights are the zoo's own, saved under their NNX paths
(e.g. a `.safetensors` of `{path: array}` from a trained run), and load through the same
checked loader as every family (every tensor used, every parameter filled, shapes equal)."""
from flax import nnx

from models.threed.vat import VAT, VATConfig
from zoo.convert import common
from zoo.convert.common import Rule


def table(cfg: VATConfig) -> list[Rule]:
  model = nnx.eval_shape(lambda: VAT(cfg, rngs=nnx.Rngs(0)))
  return [Rule(path, path) for path in common.model_params(model)]


def load_state_dict(model: VAT, state_dict: dict, *, model_name: str = "vat"):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)
