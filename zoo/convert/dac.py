"""Released DAC weights (`weights.pth` of descript-audio-codec) -> the zoo's DAC.

A release is `torch.save({"state_dict": ..., "metadata": {"kwargs": {...}}})`: the kwargs are
the constructor's arguments, so the architecture is read from the file itself (registry hook
`config_from_checkpoint`); a released name must agree with its file. Convolutions keep legacy
weight norm (`weight_g`, `weight_v`), Snake its `alpha`, the codebooks `codebook.weight`.
"""
import dataclasses
import pathlib

from models.audio.dac import DACConfig
from zoo.convert import common
from zoo.convert.common import Rule
from zoo.convert.files import read_file
from zoo.convert.torch_pickle import CheckpointFormatError, load_torch_checkpoint

RELEASES = {
    "dac_44khz": "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth",
    "dac_24khz": "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.4/weights_24khz.pth",
    "dac_16khz": "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.5/weights_16khz.pth",
    "dac_44khz_16kbps": "https://github.com/descriptinc/descript-audio-codec/releases/download/1.0.0/weights_44khz_16kbps.pth",
}
# Metadata kwargs that decide shapes or numerics; quantizer_dropout only matters in training.
ARCHITECTURE_FIELDS = ("encoder_dim", "encoder_rates", "latent_dim", "decoder_dim",
                       "decoder_rates", "n_codebooks", "codebook_size", "codebook_dim",
                       "sample_rate")


def _conv(official: str, path: str) -> list[Rule]:
  return [Rule(f"{official}.{n}", f"{path}.{n}") for n in ("weight_g", "weight_v", "bias")]


def _snake(official: str, path: str) -> list[Rule]:
  return [Rule(f"{official}.alpha", f"{path}.alpha")]


def _residual_unit(official: str, path: str) -> list[Rule]:
  return (_snake(f"{official}.block.0", f"{path}.block.0")
          + _conv(f"{official}.block.1", f"{path}.block.1")
          + _snake(f"{official}.block.2", f"{path}.block.2")
          + _conv(f"{official}.block.3", f"{path}.block.3"))


def table(cfg: DACConfig) -> list[Rule]:
  rules = _conv("encoder.block.0", "encoder.block.0")
  for i in range(1, len(cfg.encoder_rates) + 1):
    block = f"encoder.block.{i}.block"
    for j in range(3):
      rules += _residual_unit(f"{block}.{j}", f"{block}.{j}")
    rules += _snake(f"{block}.3", f"{block}.3") + _conv(f"{block}.4", f"{block}.4")
  last = len(cfg.encoder_rates) + 1
  rules += _snake(f"encoder.block.{last}", f"encoder.block.{last}")
  rules += _conv(f"encoder.block.{last + 1}", f"encoder.block.{last + 1}")
  for q in range(cfg.n_codebooks):
    official, path = f"quantizer.quantizers.{q}", f"quantizer.levels.{q}"
    rules += _conv(f"{official}.in_proj", f"{path}.in_proj")
    rules += _conv(f"{official}.out_proj", f"{path}.out_proj")
    rules.append(Rule(f"{official}.codebook.weight", f"{path}.codebook"))
  rules += _conv("decoder.model.0", "decoder.model.0")
  for i in range(1, len(cfg.decoder_rates) + 1):
    block = f"decoder.model.{i}.block"
    rules += _snake(f"{block}.0", f"{block}.0") + _conv(f"{block}.1", f"{block}.1")
    for j in range(2, 5):
      rules += _residual_unit(f"{block}.{j}", f"{block}.{j}")
  last = len(cfg.decoder_rates) + 1
  rules += _snake(f"decoder.model.{last}", f"decoder.model.{last}")
  rules += _conv(f"decoder.model.{last + 1}", f"decoder.model.{last + 1}")
  return rules


def load_state_dict(model, state_dict: dict, *, model_name: str):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def _path(source, model_name: str) -> pathlib.Path:
  if source is None:
    url = RELEASES.get(model_name)
    hint = f" (download {url})" if url else ""
    raise ValueError(f"{model_name}: pass checkpoint=PATH to a DAC weights .pth{hint}")
  path = pathlib.Path(source)
  if not path.is_file():
    raise FileNotFoundError(f"DAC checkpoint not found: {path}")
  return path


def read_checkpoint(source, *, model_name: str) -> dict:
  return read_file(_path(source, model_name))


def config_from_metadata(kwargs: dict) -> DACConfig:
  unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(DACConfig)})
  if unknown:
    raise CheckpointFormatError(f"unknown DAC metadata kwargs {unknown}")
  values = dict(kwargs)
  for key in ("encoder_rates", "decoder_rates"):
    if key in values:
      values[key] = tuple(int(r) for r in values[key])
  if isinstance(values.get("codebook_dim"), (list, tuple)):
    dims = set(values["codebook_dim"])
    if len(dims) != 1:
      raise CheckpointFormatError(f"per-level codebook_dim {values['codebook_dim']} is not "
                                  "supported (every released model uses one size)")
    values["codebook_dim"] = dims.pop()
  values["quantizer_dropout"] = float(values.get("quantizer_dropout", 0.0))
  return DACConfig(**values)


def config_from_checkpoint(source, *, model_name: str) -> DACConfig:
  """The architecture a DAC .pth was saved with; a released name must match it."""
  path = _path(source, model_name)
  checkpoint = load_torch_checkpoint(path)
  kwargs = checkpoint.get("metadata", {}).get("kwargs") if isinstance(checkpoint, dict) else None
  if not isinstance(kwargs, dict):
    raise CheckpointFormatError(f"{path}: no metadata.kwargs; not a DAC weights file "
                                "(DAC.save writes {'state_dict', 'metadata': {'kwargs'}})")
  cfg = config_from_metadata(kwargs)
  from zoo.configs.dac import MODELS
  if model_name in MODELS:
    registered = MODELS[model_name][0]
    wrong = [f"{f}: file {getattr(cfg, f)} vs {model_name} {getattr(registered, f)}"
             for f in ARCHITECTURE_FIELDS
             if getattr(cfg, f) != getattr(registered, f) and not (
                 f == "latent_dim" and cfg.latent == registered.latent)]
    if wrong:
      raise common.CheckpointMismatchError(
          f"{path} is not {model_name}: " + "; ".join(wrong))
  return cfg
