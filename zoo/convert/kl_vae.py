"""diffusers `AutoencoderKL` state dict -> models.image.kl_vae.KLVAE.

Released FlexTok VAEs (EPFL-VILAB/flextok_vae_c{4,8,16}) are diffusers repos:
`diffusion_pytorch_model.safetensors` + `config.json`. Inside a FlexTok `model.safetensors` the
same tensors sit under `vae.vae.` (FlexTok.vae is the StableDiffusionVAE wrapper, whose
AutoencoderKL attribute is `vae`): pass `prefix="vae.vae."` to `table` / `load_state_dict`.
Checkpoints written before diffusers 0.14 name the mid-block attention query/key/value/
proj_attn; `normalize_legacy_names` renames them as diffusers does on load.
"""
import json
import pathlib

from zoo.convert import common
from zoo.convert.common import CONV2D, Rule
from zoo.convert.files import CheckpointFormatError, read_safetensors
from zoo.convert.torch_pickle import load_torch_checkpoint

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_LEGACY_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


class RepoStateDict(dict):
  """A state dict that also carries the repo's config.json (for its scaling_factor)."""
  config: dict | None = None


def _conv(torch_prefix, path):
  return [Rule(f"{torch_prefix}.weight", f"{path}.kernel", CONV2D),
          Rule(f"{torch_prefix}.bias", f"{path}.bias")]


def _resnet(tp, path, has_shortcut):
  rules = (common.norm_rules(f"{tp}.norm1", f"{path}.norm1.norm")
           + _conv(f"{tp}.conv1", f"{path}.conv1")
           + common.norm_rules(f"{tp}.norm2", f"{path}.norm2.norm")
           + _conv(f"{tp}.conv2", f"{path}.conv2"))
  if has_shortcut:
    rules += _conv(f"{tp}.conv_shortcut", f"{path}.conv_shortcut")
  return rules


def _mid(tp, path, channels, add_attention):
  rules = (_resnet(f"{tp}.resnets.0", f"{path}.resnets.0", False)
           + _resnet(f"{tp}.resnets.1", f"{path}.resnets.1", False))
  if add_attention:
    a, p = f"{tp}.attentions.0", f"{path}.attention"
    rules += common.norm_rules(f"{a}.group_norm", f"{p}.group_norm.norm")
    for name in ("to_q", "to_k", "to_v"):
      rules += common.linear_rules(f"{a}.{name}", f"{p}.{name}")
    rules += common.linear_rules(f"{a}.to_out.0", f"{p}.to_out")
  return rules


def table(cfg, prefix: str = "") -> list[Rule]:
  """The explicit name table for `cfg`; `prefix` is prepended to every official name."""
  ch, n = cfg.block_out_channels, cfg.layers_per_block
  rules = _conv("encoder.conv_in", "encoder.conv_in")
  for i, c in enumerate(ch):
    cin = ch[max(i - 1, 0)]
    for j in range(n):
      rules += _resnet(f"encoder.down_blocks.{i}.resnets.{j}",
                       f"encoder.down_blocks.{i}.resnets.{j}", j == 0 and cin != c)
    if i < len(ch) - 1:
      rules += _conv(f"encoder.down_blocks.{i}.downsamplers.0.conv",
                     f"encoder.down_blocks.{i}.resample.conv")
  rules += _mid("encoder.mid_block", "encoder.mid_block", ch[-1], cfg.mid_block_add_attention)
  rules += common.norm_rules("encoder.conv_norm_out", "encoder.conv_norm_out.norm")
  rules += _conv("encoder.conv_out", "encoder.conv_out")
  if cfg.use_quant_conv:
    rules += _conv("quant_conv", "quant_conv")
  if cfg.use_post_quant_conv:
    rules += _conv("post_quant_conv", "post_quant_conv")
  rch = tuple(reversed(ch))
  rules += _conv("decoder.conv_in", "decoder.conv_in")
  rules += _mid("decoder.mid_block", "decoder.mid_block", rch[0], cfg.mid_block_add_attention)
  for i, c in enumerate(rch):
    cin = rch[max(i - 1, 0)]
    for j in range(n + 1):
      rules += _resnet(f"decoder.up_blocks.{i}.resnets.{j}",
                       f"decoder.up_blocks.{i}.resnets.{j}", j == 0 and cin != c)
    if i < len(rch) - 1:
      rules += _conv(f"decoder.up_blocks.{i}.upsamplers.0.conv",
                     f"decoder.up_blocks.{i}.resample.conv")
  rules += common.norm_rules("decoder.conv_norm_out", "decoder.conv_norm_out.norm")
  rules += _conv("decoder.conv_out", "decoder.conv_out")
  return [Rule(prefix + r.torch_name, r.path, r.transform) for r in rules]


def normalize_legacy_names(state_dict: dict, prefix: str = "") -> dict:
  """Renames pre-0.14 diffusers attention keys (query/key/value/proj_attn) to to_q/.../to_out.0.

  Those checkpoints store q/k/v as [C, C] Linear weights already; diffusers' loader also
  accepts [C, C, 1, 1] conv-shaped ones, which are squeezed here the same way.
  """
  out = type(state_dict)()
  if isinstance(state_dict, RepoStateDict):
    out.config = state_dict.config
  for name, value in state_dict.items():
    head, _, leaf = name.rpartition(".")
    parent, _, module = head.rpartition(".")
    if (name.startswith(prefix) and ".mid_block.attentions." in name
        and module in _LEGACY_ATTENTION):
      name = f"{parent}.{_LEGACY_ATTENTION[module]}.{leaf}"
      if leaf == "weight" and getattr(value, "ndim", 2) == 4:
        value = value.reshape(value.shape[0], value.shape[1])
    out[name] = value
  return out


def load_state_dict(model, state_dict: dict, *, model_name: str, prefix: str = ""):
  """Fills `model` from a diffusers AutoencoderKL state dict (keys under `prefix`).

  With a prefix, only the keys under it are this model's (the rest of a FlexTok checkpoint is
  left to its own converter). A `RepoStateDict` also sets the model's scaling_factor from the
  repo's config.json when the model config leaves it unset.
  """
  repo_config = getattr(state_dict, "config", None)
  if repo_config is not None:  # a repo id fetched by read_checkpoint: not checked before
    check_config(model.config, repo_config, model_name=model_name, source="the checkpoint's")
  sd = normalize_legacy_names(state_dict, prefix)
  if prefix:
    sd = {k: v for k, v in sd.items() if k.startswith(prefix)}
    if not sd:
      raise common.CheckpointMismatchError(
          f"checkpoint does not fit {model_name}: no tensor names start with {prefix!r}")
  common.load_state_dict(model, sd, table(model.config, prefix), model_name=model_name)
  repo_scale = (repo_config or {}).get("scaling_factor")
  if model.scaling_factor is None and repo_scale is not None:
    model.scaling_factor = float(repo_scale)


# config.json key -> (KLVAEConfig field or a fixed value FlexTok's VAE_BASE_CFG implies).
_FIXED = {"act_fn": "silu", "shift_factor": None, "latents_mean": None, "latents_std": None}


def check_config(cfg, hf_config: dict, *, model_name: str, source=""):
  """Compares a diffusers AutoencoderKL config.json with `cfg` before any tensor is read."""
  if hf_config.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
    raise common.CheckpointMismatchError(
        f"{source}/config.json describes a {hf_config['_class_name']}, not the AutoencoderKL "
        f"of {model_name}")
  levels = len(cfg.block_out_channels)
  want = {"latent_channels": cfg.latent_channels,
          "block_out_channels": list(cfg.block_out_channels),
          "layers_per_block": cfg.layers_per_block, "norm_num_groups": cfg.norm_num_groups,
          "in_channels": cfg.in_channels, "out_channels": cfg.out_channels,
          "use_quant_conv": cfg.use_quant_conv, "use_post_quant_conv": cfg.use_post_quant_conv,
          "mid_block_add_attention": cfg.mid_block_add_attention,
          "down_block_types": ["DownEncoderBlock2D"] * levels,
          "up_block_types": ["UpDecoderBlock2D"] * levels, **_FIXED}
  if cfg.scaling_factor is not None:
    want["scaling_factor"] = cfg.scaling_factor
  got = {k: (list(v) if isinstance(v, tuple) else v) for k, v in hf_config.items()}
  diffs = [f"{k}: config.json {got[k]!r}, {model_name} {v!r}" for k, v in want.items()
           if k in got and got[k] != v and not (k == "scaling_factor" and got[k] is None)]
  if diffs:
    raise common.CheckpointMismatchError(
        f"{source}/config.json describes another VAE than {model_name} (pick the matching name "
        "or pass config overrides):\n  " + "\n  ".join(diffs))


def read_checkpoint(source, *, model_name: str) -> RepoStateDict:
  """Tensors of a diffusers repo dir (or a weight file), with the dir's config.json attached."""
  if source is None:
    raise ValueError(f"{model_name} has no released checkpoint; pass checkpoint=PATH")
  path = pathlib.Path(source)
  config = None
  if path.is_dir():
    found = [path / f for f in WEIGHT_FILES if (path / f).is_file()]
    if not found:
      raise FileNotFoundError(f"{path} holds none of {', '.join(WEIGHT_FILES)}")
    if (path / "config.json").is_file():
      try:
        config = json.loads((path / "config.json").read_text())
      except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointFormatError(f"{path}/config.json: not valid JSON ({e})") from e
    path = found[0]
  elif not path.exists() and str(source).count("/") == 1 and not str(source).startswith((".", "/")):
    path = _download(str(source), model_name)
    config = json.loads((path.parent / "config.json").read_text()) if (
        path.parent / "config.json").is_file() else None
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  if path.suffix == ".safetensors":
    tensors = read_safetensors(path)
  elif path.suffix == ".bin":
    tensors = load_torch_checkpoint(path)
  else:
    raise CheckpointFormatError(f"{path}: expected a .safetensors or .bin diffusers weight file")
  out = RepoStateDict(tensors)
  out.config = config
  return out


def _download(repo_id: str, model_name: str) -> pathlib.Path:
  """The repo's weights and config.json through the HF cache (offline-aware)."""
  import os
  offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
  try:
    from huggingface_hub import hf_hub_download
    try:
      hf_hub_download(repo_id, "config.json", local_files_only=offline)
    except Exception:  # the weights alone still load; scaling_factor then stays as configured
      pass
    return pathlib.Path(hf_hub_download(repo_id, WEIGHT_FILES[0], local_files_only=offline))
  except Exception as e:
    why = ("offline (HF_HUB_OFFLINE is set) and not in the HF cache" if offline
           else f"could not download it ({type(e).__name__})")
    raise FileNotFoundError(
        f"{repo_id}/{WEIGHT_FILES[0]}: {why}; download it and config.json from "
        f"https://huggingface.co/{repo_id} and pass the directory as checkpoint=") from e
