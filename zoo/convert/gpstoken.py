"""Official GPSToken state dicts (xtudbxk/GPSToken, flat safetensors) -> models.image.gpstoken.

Released files: gpstoken_{s64,m128,l256}.safetensors (HF xtudbxk/GPSToken, also Baidu /
OneDrive). The official inference keeps only the keys of `model.state_dict()`, so a file may
carry more (training state); those are reported and ignored here too. Two tensors of the
official model are never used by its forward: the encoder ResNet blocks are built with the
taming default `temb_channels=512` and called without a timestep, so
`preprocess_img.{1,2}.temb_proj` are checked for shape and dropped.

S64 and M128 have the same tensor shapes (the token count is not a weight): a checkpoint of
one loads into the other, and only the reconstructions tell them apart.
"""
import logging
import pathlib

from zoo.convert import common
from zoo.convert.common import CONV2D, Rule, linear_rules, norm_rules
from zoo.convert.files import read_file

log = logging.getLogger(__name__)
TIMESTEP_CHANNELS = 512  # taming ResnetBlock's default temb_channels


def _conv(tp, path):
  return linear_rules(tp, path, CONV2D)


def _resnet(tp, path, *, shortcut: bool, tiled: bool):
  norm = (lambda t, p: norm_rules(t, p)) if tiled else (lambda t, p: norm_rules(t, f"{p}.norm"))
  rules = (norm(f"{tp}.norm1", f"{path}.norm1") + _conv(f"{tp}.conv1", f"{path}.conv1")
           + norm(f"{tp}.norm2", f"{path}.norm2") + _conv(f"{tp}.conv2", f"{path}.conv2"))
  return rules + (_conv(f"{tp}.nin_shortcut", f"{path}.nin_shortcut") if shortcut else [])


def _attention_block(tp, path):
  return (linear_rules(f"{tp}.roimlp", f"{path}.roimlp")
          + norm_rules(f"{tp}.ln1", f"{path}.ln1")
          + common.multihead_attention_rules(f"{tp}.attn1", f"{path}.attn1")
          + norm_rules(f"{tp}.ln2", f"{path}.ln2")
          + linear_rules(f"{tp}.mlp.0", f"{path}.mlp_0")
          + linear_rules(f"{tp}.mlp.2", f"{path}.mlp_2"))


def _decoder(cfg):
  ch, mult = cfg.decoder_channels, cfg.decoder_mult
  rules = _conv("decoder.conv_in", "decoder.conv_in")
  for name in ("block_1", "block_2"):
    rules += _resnet(f"decoder.mid.{name}", f"decoder.mid_{name}", shortcut=False, tiled=True)
  a = "decoder.mid.attn_1"
  rules += norm_rules(f"{a}.norm", "decoder.mid_attn_1.norm.norm")
  for name in ("q", "k", "v", "proj_out"):
    rules += _conv(f"{a}.{name}", f"decoder.mid_attn_1.{name}")
  cin = ch * mult[-1]
  for i in reversed(range(len(mult))):
    cout = ch * mult[i]
    for j in range(cfg.decoder_res_blocks + 1):
      rules += _resnet(f"decoder.up.{i}.block.{j}", f"decoder.up.{i}.block.{j}",
                       shortcut=(cin if j == 0 else cout) != cout, tiled=True)
    if i != 0:
      rules += _conv(f"decoder.up.{i}.upsample.conv", f"decoder.up.{i}.upsample.conv")
    cin = cout
  return rules + norm_rules("decoder.norm_out", "decoder.norm_out") + _conv(
      "decoder.conv_out", "decoder.conv_out")


def table(cfg) -> list[Rule]:
  rules = _conv("preprocess_img.0", "preprocess_conv")
  for i in range(2):
    rules += _resnet(f"preprocess_img.{i + 1}", f"preprocess_blocks.{i}", shortcut=False,
                     tiled=False)
  rules += _conv("roialign_layer", "roialign_layer")
  rules.append(Rule("gps_embed.weight", "gps_embed"))
  for i in range(cfg.depth):
    rules += _attention_block(f"attnblocks.{i}", f"attnblocks.{i}")
  rules += linear_rules("gps_embed_layer.0", "gps_embed_layer_0")
  rules += linear_rules("gps_embed_layer.2", "gps_embed_layer_2")
  rules += linear_rules("to_gps.0", "to_gps_0") + linear_rules("to_gps.1", "to_gps_1")
  return rules + _decoder(cfg)


def unused_official_shapes(cfg) -> dict[str, tuple]:
  """The official model's tensors that its forward never reads (module docstring)."""
  c = cfg.cond_channels
  out = {}
  for i in (1, 2):
    out[f"preprocess_img.{i}.temb_proj.weight"] = (c, TIMESTEP_CHANNELS)
    out[f"preprocess_img.{i}.temb_proj.bias"] = (c,)
  return out


def load_state_dict(model, state_dict: dict, *, model_name: str):
  rules = table(model.config)
  known = {r.torch_name for r in rules}
  unused = unused_official_shapes(model.config)
  problems = [f"shape mismatch for {k}: checkpoint {tuple(state_dict[k].shape)}, the official "
              f"model has {shape}" for k, shape in unused.items()
              if k in state_dict and tuple(state_dict[k].shape) != shape]
  if problems:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  # Keys outside the official model, ignored as its inference does (not when nothing fits:
  # then the loader's "missing" list says which file this is not).
  outside = sorted(k for k in state_dict if k not in known and k not in unused)
  if outside and len(outside) < len(state_dict):
    log.warning("%s: ignoring %d checkpoint tensors outside the model: %s", model_name,
                len(outside), ", ".join(outside[:10]) + (" ..." if len(outside) > 10 else ""))
    state_dict = {k: v for k, v in state_dict.items() if k in known}
  else:
    state_dict = {k: v for k, v in state_dict.items() if k not in unused}
  common.load_state_dict(model, state_dict, rules, model_name=model_name)


def read_checkpoint(source, *, model_name: str) -> dict:
  """A .safetensors file, or a directory holding `<model_name>.safetensors`."""
  if source is None:
    raise ValueError(f"{model_name}: pass checkpoint=PATH to the released {model_name}"
                     ".safetensors (HF xtudbxk/GPSToken)")
  path = pathlib.Path(source)
  if path.is_dir():
    path = path / f"{model_name}.safetensors"
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint not found: {path}")
  return read_file(path)
