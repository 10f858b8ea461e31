"""Released SNAC weights (HF hubertsiuzdak/snac_*: config.json + pytorch_model.bin) -> our SNAC.

config.json holds the official constructor's arguments (`sampling_rate`, ...); a released
name must agree with it (registry hook `check_config`). snac 1.2.1 builds its convs with
`torch.nn.utils.parametrizations.weight_norm`, so a state dict names the gain and direction
`<conv>.parametrizations.weight.original0` / `original1`; files saved with the legacy
`weight_norm` say `weight_g` / `weight_v`. Both are accepted (torch maps them the same way).
The attention's rotary `rel_pos.inv_freq` is a persistent buffer of fixed values: it is
checked against ours, not loaded.
"""
import os
import pathlib

import numpy as np

from models.audio.snac import SNACConfig, rotary_inv_freq
from zoo.configs.snac import MODELS, RELEASES
from zoo.convert import common
from zoo.convert.common import Rule
from zoo.convert.files import read_file
from zoo.convert.torch_pickle import CheckpointFormatError

WEIGHT_FILE = "pytorch_model.bin"
GAIN, DIRECTION = "parametrizations.weight.original0", "parametrizations.weight.original1"
LEGACY = {"weight_g": GAIN, "weight_v": DIRECTION}
# config.json key -> SNACConfig field, for the fields that decide shapes or numerics.
JSON_FIELDS = {"sampling_rate": "sample_rate", "encoder_dim": "encoder_dim",
               "encoder_rates": "encoder_rates", "latent_dim": "latent_dim",
               "decoder_dim": "decoder_dim", "decoder_rates": "decoder_rates",
               "attn_window_size": "attn_window_size", "codebook_size": "codebook_size",
               "codebook_dim": "codebook_dim", "vq_strides": "vq_strides", "noise": "noise",
               "depthwise": "depthwise"}


def _conv(official: str, path: str, bias: bool = True) -> list[Rule]:
  rules = [Rule(f"{official}.{GAIN}", f"{path}.weight_g"),
           Rule(f"{official}.{DIRECTION}", f"{path}.weight_v")]
  return rules + ([Rule(f"{official}.bias", f"{path}.bias")] if bias else [])


def _snake(official: str, path: str) -> list[Rule]:
  return [Rule(f"{official}.alpha", f"{path}.alpha")]


def _residual_unit(name: str) -> list[Rule]:
  b = f"{name}.block"
  return (_snake(f"{b}.0", f"{b}.0") + _conv(f"{b}.1", f"{b}.1")
          + _snake(f"{b}.2", f"{b}.2") + _conv(f"{b}.3", f"{b}.3"))


def _attention(name: str) -> list[Rule]:
  return [Rule(f"{name}.norm.weight", f"{name}.norm.scale"),
          Rule(f"{name}.norm.bias", f"{name}.norm.bias"),
          Rule(f"{name}.to_qkv.weight", f"{name}.to_qkv.kernel", common.LINEAR),
          Rule(f"{name}.to_out.weight", f"{name}.to_out.kernel", common.LINEAR)]


def _encoder_layout(cfg: SNACConfig) -> tuple[int | None, int]:
  """Indices in encoder.block of the attention (or None) and of the last conv."""
  attn = len(cfg.encoder_rates) + 1 if cfg.attn_window_size is not None else None
  return attn, len(cfg.encoder_rates) + 1 + (attn is not None)


def _decoder_layout(cfg: SNACConfig) -> tuple[int | None, int]:
  """Indices in decoder.model of the attention (or None) and of the first DecoderBlock."""
  first = 2 if cfg.depthwise else 1
  attn = first if cfg.attn_window_size is not None else None
  return attn, first + (attn is not None)


def table(cfg: SNACConfig) -> list[Rule]:
  rules = _conv("encoder.block.0", "encoder.block.0")
  for i in range(1, len(cfg.encoder_rates) + 1):
    block = f"encoder.block.{i}.block"
    for j in range(3):
      rules += _residual_unit(f"{block}.{j}")
    rules += _snake(f"{block}.3", f"{block}.3") + _conv(f"{block}.4", f"{block}.4")
  attn, last = _encoder_layout(cfg)
  if attn is not None:
    rules += _attention(f"encoder.block.{attn}")
  rules += _conv(f"encoder.block.{last}", f"encoder.block.{last}")
  for q in range(len(cfg.vq_strides)):
    official, path = f"quantizer.quantizers.{q}", f"quantizer.levels.{q}"
    rules += _conv(f"{official}.in_proj", f"{path}.in_proj")
    rules += _conv(f"{official}.out_proj", f"{path}.out_proj")
    rules.append(Rule(f"{official}.codebook.weight", f"{path}.codebook"))
  rules += _conv("decoder.model.0", "decoder.model.0")
  if cfg.depthwise:
    rules += _conv("decoder.model.1", "decoder.model.1")
  attn, first = _decoder_layout(cfg)
  if attn is not None:
    rules += _attention(f"decoder.model.{attn}")
  for i in range(len(cfg.decoder_rates)):
    block = f"decoder.model.{first + i}.block"
    rules += _snake(f"{block}.0", f"{block}.0") + _conv(f"{block}.1", f"{block}.1")
    if cfg.noise:
      rules += _conv(f"{block}.2.linear", f"{block}.2.linear", bias=False)
    for j in range(3):
      rules += _residual_unit(f"{block}.{2 + cfg.noise + j}")
  last = first + len(cfg.decoder_rates)
  rules += _snake(f"decoder.model.{last}", f"decoder.model.{last}")
  rules += _conv(f"decoder.model.{last + 1}", f"decoder.model.{last + 1}")
  return rules


def rotary_buffers(cfg: SNACConfig) -> dict[str, np.ndarray]:
  """{name: value} of the official rotary `inv_freq` buffers (one per attention)."""
  names = []
  if cfg.attn_window_size is not None:
    names = [f"encoder.block.{_encoder_layout(cfg)[0]}.rel_pos.inv_freq",
             f"decoder.model.{_decoder_layout(cfg)[0]}.rel_pos.inv_freq"]
  return {name: rotary_inv_freq(cfg.attn_head_dim) for name in names}


def expected_shapes(model) -> dict[str, tuple]:
  """Every official state-dict name (parameters and buffers) with its shape."""
  shapes = common.expected_torch_shapes(model, table(model.config))
  return shapes | {k: v.shape for k, v in rotary_buffers(model.config).items()}


def canonical_names(state_dict: dict) -> dict:
  """Legacy weight-norm names (`weight_g`, `weight_v`) -> snac 1.2.1's parametrization names."""
  out = {}
  for name, value in state_dict.items():
    head, _, leaf = name.rpartition(".")
    new = f"{head}.{LEGACY[leaf]}" if leaf in LEGACY else name
    if new in out:
      raise common.CheckpointMismatchError(
          f"{new} appears twice: as {name} and in the parametrization form")
    out[new] = value
  return out


def load_state_dict(model, state_dict: dict, *, model_name: str):
  state_dict = canonical_names(state_dict)
  for name, want in rotary_buffers(model.config).items():
    if name in state_dict:  # optional: conversions by others may drop buffers
      got = np.asarray(state_dict.pop(name), np.float32)
      if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=0):
        raise common.CheckpointMismatchError(
            f"{model_name}: {name} {got.shape} is not the rotary inv_freq of heads of "
            f"{model.config.attn_head_dim} (1 / 10000 ** (2i / d))")
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def config_from_json(hf_config: dict) -> SNACConfig:
  """A release's config.json (the official SNAC kwargs) -> SNACConfig."""
  unknown = sorted(set(hf_config) - set(JSON_FIELDS))
  if unknown:
    raise CheckpointFormatError(f"unknown SNAC config.json keys {unknown}; expected some of "
                                f"{sorted(JSON_FIELDS)}")
  values = {}
  for key, value in hf_config.items():
    values[JSON_FIELDS[key]] = tuple(int(v) for v in value) if isinstance(value, list) else value
  return SNACConfig(**values)


def check_config(cfg: SNACConfig, hf_config: dict, *, model_name: str, source=""):
  """A repo's config.json against `cfg`, before any tensor is read. A key the file leaves out
  takes the official constructor's default, as SNAC.from_config would."""
  got = config_from_json(hf_config)
  diffs = []
  for key, field in JSON_FIELDS.items():
    mine, theirs = getattr(cfg, field), getattr(got, field)
    if field == "latent_dim":
      mine, theirs = cfg.latent_dim or cfg.latent, got.latent_dim or got.latent
    if mine != theirs:
      diffs.append(f"{key}: config.json {theirs!r}, {model_name} {mine!r}")
  if diffs:
    raise common.CheckpointMismatchError(
        f"{source}/config.json describes another SNAC than {model_name} (pick the matching "
        "name or pass config overrides):\n  " + "\n  ".join(diffs))


def read_checkpoint(source, *, model_name: str) -> dict:
  """Tensors of a repo dir (pytorch_model.bin), a weight file, or a HF repo id (downloaded
  with its config.json, which is checked against `model_name`)."""
  if source is None:
    repo = RELEASES.get(model_name)
    raise ValueError(f"{model_name}: pass checkpoint=PATH to a SNAC repo dir or "
                     f"{WEIGHT_FILE}" + (f" (download from https://huggingface.co/{repo})"
                                         if repo else ""))
  path = pathlib.Path(source)
  if path.is_dir():
    for name in (WEIGHT_FILE, "model.safetensors"):
      if (path / name).is_file():
        return read_file(path / name)
    raise FileNotFoundError(f"{path} holds no {WEIGHT_FILE} (a SNAC repo dir has config.json "
                            f"and {WEIGHT_FILE})")
  if path.is_file() or path.suffix in (".bin", ".pth", ".pt", ".safetensors"):
    return read_file(path)
  if str(source).count("/") == 1 and not str(source).startswith((".", "/")):
    return _download(str(source), model_name)
  raise FileNotFoundError(f"SNAC checkpoint not found: {source}")


def _download(repo_id: str, model_name: str) -> dict:
  """The repo's weights and config.json from the HF hub (only its cache when offline)."""
  import json
  from huggingface_hub import hf_hub_download
  offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
  try:
    weights = hf_hub_download(repo_id, WEIGHT_FILE, local_files_only=offline)
    config = hf_hub_download(repo_id, "config.json", local_files_only=offline)
  except Exception as e:  # no network, unknown repo: say what to fetch by hand
    why = "offline and not in the HF cache" if offline else f"download failed ({type(e).__name__})"
    raise FileNotFoundError(
        f"{repo_id}: {WEIGHT_FILE} and config.json: {why}; download them from "
        f"https://huggingface.co/{repo_id} and pass their directory as checkpoint=") from e
  if model_name in MODELS:
    check_config(MODELS[model_name][0], json.loads(pathlib.Path(config).read_text()),
                 model_name=model_name, source=repo_id)
  return read_file(weights)

