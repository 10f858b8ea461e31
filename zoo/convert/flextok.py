"""Official FlexTok checkpoints (one `model.safetensors` with the Hydra config in its header).

The safetensors header's `__metadata__` holds the full Hydra config of the released model,
one stringified entry per top-level key (`vae`, `encoder`, `decoder`, `regularizer`,
`flow_matching_noise_module`, `pipeline`), parsed back with `ast.literal_eval` as FlexTok's
`load_safetensors` does. The encoder and decoder are `SequentialModuleDictWrapper`s whose
module names are free, so modules are recognised by their `_target_` class and the tensor
names (`encoder.module_dict.<name>.…`) are built from the names found. A repo directory's
config.json (FlexTokFromHub's mixin config) has the same content.

`config_from_checkpoint(source)` / `from_checkpoint(source)` build the model from the header;
`read_checkpoint`, `table`, `load_state_dict` and `check_config` are the registry hooks.
"""
import ast
import dataclasses
import json
import pathlib

import numpy as np

from models.image.flextok import FlexTokConfig, sincos_posemb
from zoo.convert import common
from zoo.convert.common import LINEAR, Rule, linear_rules
from zoo.convert.torch_pickle import CheckpointFormatError

DEFAULT_NAMES = ("enc_patch_emb", "enc_posemb_module", "enc_register_module", "enc_transformer",
                 "enc_to_latents", "dec_from_latents", "dec_nested_dropout", "dec_nullcond",
                 "dec_patch_emb", "dec_posemb_module", "dec_time_embedder", "dec_transformer",
                 "dec_to_patches")
SECTIONS = ("encoder", "decoder", "regularizer", "flow_matching_noise_module")
# Module classes that only move tensors between dict keys (no parameters, no math we model).
_PLUMBING = {"PerSampleOp", "SequenceUnpacker", "DictKeyFilter"}
ENCODER_CLASSES = {"PatchEmbedder": "enc_patch_emb", "PositionalEmbeddingAdder": "enc_posemb_module",
                   "Registers1D": "enc_register_module", "BlockWiseSequencePacker": "enc_seq_packer",
                   "FlexTransformer": "enc_transformer", "LinearHead": "enc_to_latents"}
DECODER_CLASSES = {"LinearLayer": "dec_from_latents", "MaskedNestedDropout": "dec_nested_dropout",
                   "ZeroNullCond": "dec_nullcond", "LearnedNullCond": "dec_nullcond",
                   "PatchEmbedder": "dec_patch_emb", "PositionalEmbeddingAdder": "dec_posemb_module",
                   "TimestepEmbedder": "dec_time_embedder",
                   "BlockWiseSequencePacker": "dec_seq_packer", "FlexTransformer": "dec_transformer",
                   "ToPatchesLinearHead": "dec_to_patches"}
VAE_PREFIX = "vae."
VAE_TORCH_PREFIX = "vae.vae."


class MetadataError(ValueError):
  """The checkpoint's Hydra config describes something this port does not model."""


# -- reading ---------------------------------------------------------------------------------
def _safetensors_path(source) -> pathlib.Path:
  if source is None:
    raise FileNotFoundError("FlexTok needs checkpoint= a model.safetensors file or the "
                            "directory holding it (https://huggingface.co/EPFL-VILAB)")
  path = pathlib.Path(source)
  if path.is_dir():
    path = path / "model.safetensors"
  if not path.is_file():
    raise FileNotFoundError(f"FlexTok checkpoint not found: {path} (download model.safetensors "
                            "from https://huggingface.co/EPFL-VILAB/<name>)")
  return path


def parse_metadata(raw: dict) -> dict:
  """FlexTok's parse_metadata: each value literal_eval'd, kept as a string when that fails."""
  out = {}
  for key, value in raw.items():
    try:
      out[key] = ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError, MemoryError, RecursionError):
      out[key] = value
  return out


def read_metadata(source) -> dict:
  """The parsed `__metadata__` of a FlexTok model.safetensors (reads the header only)."""
  path = _safetensors_path(source)
  with open(path, "rb") as f:
    head = f.read(8)
    if len(head) < 8:
      raise CheckpointFormatError(f"{path}: truncated .safetensors file (no header)")
    n = int.from_bytes(head, "little")
    if n > 100_000_000:
      raise CheckpointFormatError(f"{path}: implausible safetensors header length {n}")
    try:
      header = json.loads(f.read(n))
    except (ValueError, UnicodeDecodeError) as e:
      raise CheckpointFormatError(f"{path}: corrupt safetensors header ({e})") from e
  meta = header.get("__metadata__")
  if not meta:
    raise MetadataError(f"{path}: no __metadata__ in the safetensors header; FlexTok "
                        "checkpoints carry their Hydra config there")
  return parse_metadata(meta)


class HeaderStateDict(dict):
  """A state dict that also carries the checkpoint's parsed Hydra header (`metadata`)."""
  metadata: dict | None = None


def _resolve(source, model_name: str):
  """A local file/dir, or a HF repo id fetched through the cache (offline-aware)."""
  path = pathlib.Path(str(source)) if source is not None else None
  if (path is not None and not path.exists() and str(source).count("/") == 1
      and not str(source).startswith((".", "/"))):
    from zoo.convert.files import _download
    return _download(str(source), model_name)
  return source


def read_checkpoint(source, *, model_name: str = "flextok") -> HeaderStateDict:
  """{official tensor name: numpy array} of a FlexTok model.safetensors, with its header."""
  from zoo.convert.files import read_safetensors
  source = _resolve(source, model_name)
  out = HeaderStateDict(read_safetensors(_safetensors_path(source)))
  try:
    out.metadata = read_metadata(source)
  except MetadataError:
    out.metadata = None
  return out


# -- config from the Hydra metadata ----------------------------------------------------------
def _cls(node) -> str:
  return str(node.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(node, dict) else ""


def _section(meta: dict, key: str) -> dict:
  if key not in meta:
    raise MetadataError(f"metadata has no {key!r} entry (keys: {sorted(meta)})")
  node = meta[key]
  if isinstance(node, str):
    raise MetadataError(f"metadata field {key!r} is not a parsable Python literal: {node[:80]!r}")
  return node


def _find(section: dict, which: str, classes: dict) -> tuple[dict, list]:
  """{role: (name, args)} and the ordered [(name, class)] of a module_dict."""
  mods = section.get("module_dict")
  if not isinstance(mods, dict):
    raise MetadataError(f"{which}: expected a SequentialModuleDictWrapper with a module_dict, "
                        f"got {_cls(section) or type(section).__name__}")
  found, order, unknown = {}, [], []
  for name, node in mods.items():
    cls = _cls(node)
    order.append((name, cls))
    if cls in _PLUMBING:
      continue
    if cls not in classes:
      unknown.append(f"{which}.module_dict.{name} ({cls or 'no _target_'})")
      continue
    role = classes[cls]
    if role in found:
      raise MetadataError(f"{which}: two {cls} modules ({found[role][0]}, {name}); this port "
                          "models one")
    found[role] = (name, node)
  if unknown:
    raise MetadataError(f"modules this port does not implement: {', '.join(unknown)}")
  missing = sorted(set(classes.values()) - set(found))
  if missing:
    raise MetadataError(f"{which}: no module for {missing} (found {[c for _, c in order]})")
  return found, order


def _require(cond, where, field, value, want):
  if not cond:
    raise MetadataError(f"{where}.{field} = {value!r} is not supported (this port implements "
                        f"{want})")


def _trunk(node, where):
  name, args = node
  w = f"{where}.module_dict.{name}"
  for field, want in (("qkv_bias", False), ("proj_bias", False), ("mlp_bias", False),
                      ("gated_mlp", True), ("qk_norm", True), ("rope_forward_read_key", None),
                      ("score_mod_read_key", None)):
    value = args.get(field, want)
    _require(value == want, w, field, value, repr(want))
  for field, token in (("act_layer", "SiLU"), ("norm_layer", "Fp32LayerNorm")):
    if field in args and args[field] is not None:
      text = str(args[field])
      ok = token in text and "'elementwise_affine': True" not in text and "'bias': True" not in text
      _require(ok, w, field, args[field], f"the default {token} (affine-free for norms)")
  head_dim = int(args.get("head_dim", 64))
  dim, depth = int(args.get("dim", 768)), int(args.get("depth", 12))
  return dim, depth, head_dim, float(args.get("mlp_ratio", 4.0))


def _head_norm(args, w):
  norm = args.get("norm_layer", "default")
  if norm is None:
    return False
  if norm != "default":
    text = str(norm)
    _require("Fp32LayerNorm" in text and "'elementwise_affine': True" not in text, w,
             "norm_layer", norm, "the affine-free Fp32LayerNorm or None")
  return True


def config_from_metadata(meta: dict, *, with_vae: bool = True) -> FlexTokConfig:
  """FlexTokConfig from the parsed header (or config.json); errors name the field.

  `with_vae=False` leaves the VAE out (a latent-space model: encode_latents / decoder_velocity /
  sample_latents only), e.g. when models.image.kl_vae is not available.
  """
  enc, dec = _section(meta, "encoder"), _section(meta, "decoder")
  reg, noise = _section(meta, "regularizer"), _section(meta, "flow_matching_noise_module")
  e, _ = _find(enc, "encoder", ENCODER_CLASSES)
  d, dec_order = _find(dec, "decoder", DECODER_CLASSES)
  names = {role: node[0] for role, node in {**e, **d}.items()}

  def args(found, role):
    return found[role][1]

  def where(found, role, side):
    return f"{side}.module_dict.{found[role][0]}"

  if _cls(reg) != "FSQ":
    raise MetadataError(f"regularizer: {_cls(reg) or 'no _target_'} is not supported (FSQ only)")
  levels = tuple(int(v) for v in reg.get("levels", ()))
  if not levels:
    raise MetadataError("regularizer.levels is missing")
  if _cls(noise) != "MinRFNoiseModule":
    raise MetadataError(f"flow_matching_noise_module: {_cls(noise)} is not supported "
                        "(MinRFNoiseModule only)")

  # Encoder.
  pe, w_pe = args(e, "enc_patch_emb"), where(e, "enc_patch_emb", "encoder")
  patch = pe.get("patch_sizes", [])
  _require(len(patch) == 2 and patch[0] == patch[1], w_pe, "patch_sizes", patch, "square 2D")
  latent_channels, patch = int(pe["channels_in"]), int(patch[0])
  enc_dim, enc_depth, head_dim, mlp_ratio = _trunk(e["enc_transformer"], "encoder")
  _require(int(pe.get("dim", enc_dim)) == enc_dim, w_pe, "dim", pe.get("dim"), f"{enc_dim}")
  grids = []
  for found, role, side, dim in ((e, "enc_posemb_module", "encoder", enc_dim),
                                 (d, "dec_posemb_module", "decoder", None)):
    a, w = args(found, role), where(found, role, side)
    _require(a.get("posemb_type", "sincos") == "sincos", w, "posemb_type", a.get("posemb_type"),
             "'sincos'")
    _require(a.get("posemb_scaling", "absolute") == "absolute", w, "posemb_scaling",
             a.get("posemb_scaling"), "'absolute'")
    sizes = a.get("max_sizes", [])
    _require(len(sizes) == 2 and sizes[0] == sizes[1], w, "max_sizes", sizes, "square 2D")
    grids.append(int(sizes[0]))
  if grids[0] != grids[1]:
    raise MetadataError(f"encoder / decoder posemb grids differ: {grids}")
  grid = grids[0]
  r, w_r = args(e, "enc_register_module"), where(e, "enc_register_module", "encoder")
  k = int(r["n_max"])
  _require(r.get("ordering_mode", "nested") == "nested", w_r, "ordering_mode",
           r.get("ordering_mode"), "'nested'")
  _require(r.get("n_eval") in (None, k), w_r, "n_eval", r.get("n_eval"), f"None or n_max={k}")
  _require(r.get("extra_registers_write_key") is None, w_r, "extra_registers_write_key",
           r.get("extra_registers_write_key"), "None")
  packers = {}
  for found, side, first, second in ((e, "encoder", "enc_patch_emb", "enc_register_module"),
                                     (d, "decoder", "dec_patch_emb", "dec_from_latents")):
    role = f"{side[:3]}_seq_packer"
    a, w = args(found, role), where(found, role, side)
    keys = a.get("input_list_read_keys", [])
    _require(len(keys) == 2, w, "input_list_read_keys", keys, "[patches, registers]")
    packers[side] = (a.get("mask_mode", "full"), a)
  enc_head, w_h = args(e, "enc_to_latents"), where(e, "enc_to_latents", "encoder")
  _require(not enc_head.get("use_mup_readout", False), w_h, "use_mup_readout", True,
           "False (MuReadout needs mup base shapes that a checkpoint cannot carry)")
  _require(enc_head.get("adaLN_emb_read_key") is None, w_h, "adaLN_emb_read_key",
           enc_head.get("adaLN_emb_read_key"), "None")
  _require(int(enc_head.get("dim_out", -1)) == len(levels), w_h, "dim_out",
           enc_head.get("dim_out"), f"{len(levels)} (one per FSQ level)")

  # Decoder.
  dec_dim, dec_depth, dec_head_dim, dec_ratio = _trunk(d["dec_transformer"], "decoder")
  if (dec_head_dim, dec_ratio) != (head_dim, mlp_ratio):
    raise MetadataError(f"decoder head_dim / mlp_ratio {dec_head_dim}/{dec_ratio} differ from the "
                        f"encoder's {head_dim}/{mlp_ratio}; this port shares them")
  tr, w_tr = args(d, "dec_transformer"), where(d, "dec_transformer", "decoder")
  _require(tr.get("adaLN_emb_read_key") is not None, w_tr, "adaLN_emb_read_key", None,
           "AdaLN time conditioning")
  expansion = int(tr.get("adaLN_expansion", 1))
  per_subseq = bool(packers["decoder"][1].get("per_subseq_embs", False))
  _require(expansion == (2 if per_subseq else 1), w_tr, "adaLN_expansion", expansion,
           "2 with per_subseq_embs (patches, registers) or 1 without")
  lin, w_lin = args(d, "dec_from_latents"), where(d, "dec_from_latents", "decoder")
  _require(int(lin.get("dim_in", -1)) == len(levels), w_lin, "dim_in", lin.get("dim_in"),
           f"{len(levels)}")
  _require(int(lin.get("dim", dec_dim)) == dec_dim, w_lin, "dim", lin.get("dim"), f"{dec_dim}")
  keep_mode = args(d, "dec_nested_dropout").get("size_sampling_mode", "uniform")
  null_name, null = d["dec_nullcond"]
  w_null = f"decoder.module_dict.{null_name}"
  learned = _cls(null) == "LearnedNullCond"
  _require(not null.get("replace_with_single_token", False), w_null, "replace_with_single_token",
           True, "False")
  op_of = {d["dec_from_latents"][0]: "proj", d["dec_nested_dropout"][0]: "nested_dropout",
           null_name: "nullcond"}
  ops = tuple(op_of[name] for name, _ in dec_order if name in op_of)
  te, w_te = args(d, "dec_time_embedder"), where(d, "dec_time_embedder", "decoder")
  _require(not te.get("temb_as_tokens", False), w_te, "temb_as_tokens", True, "False")
  head, w_dh = args(d, "dec_to_patches"), where(d, "dec_to_patches", "decoder")
  _require(not head.get("use_mup_readout", False), w_dh, "use_mup_readout", True, "False")
  _require(int(head.get("channels_out", -1)) == latent_channels, w_dh, "channels_out",
           head.get("channels_out"), f"{latent_channels} (the latent channels)")
  _require(list(head.get("patch_sizes", [])) == [patch, patch], w_dh, "patch_sizes",
           head.get("patch_sizes"), f"[{patch}, {patch}]")
  _require(head.get("adaLN_packing_fn_read_key") is None, w_dh, "adaLN_packing_fn_read_key",
           head.get("adaLN_packing_fn_read_key"), "None")
  dpe = args(d, "dec_patch_emb")
  _require(int(dpe["channels_in"]) == latent_channels and
           list(dpe.get("patch_sizes", [])) == [patch, patch],
           where(d, "dec_patch_emb", "decoder"), "channels_in/patch_sizes",
           (dpe.get("channels_in"), dpe.get("patch_sizes")), f"{latent_channels}, [{patch}, {patch}]")

  # VAE.
  vae_node = meta.get("vae")
  vae_cfg, downsample = None, 1
  if isinstance(vae_node, dict) and vae_node:
    downsample = 8
    if _cls(vae_node) != "StableDiffusionVAE":
      raise MetadataError(f"vae: {_cls(vae_node)} is not supported (StableDiffusionVAE only)")
    if int(vae_node.get("latent_channels", latent_channels)) != latent_channels:
      raise MetadataError(f"vae.latent_channels {vae_node.get('latent_channels')} differs from the "
                          f"encoder's channels_in {latent_channels}")
    if with_vae:
      vae_cfg = vae_config_from_metadata(vae_node)
  elif latent_channels != 3:
    raise MetadataError(f"metadata has no vae entry but the encoder reads {latent_channels} "
                        "channels")
  pipe = meta.get("pipeline") if isinstance(meta.get("pipeline"), dict) else {}
  if pipe and _cls(pipe) != "MinRFPipeline":
    raise MetadataError(f"pipeline: {_cls(pipe)} is not supported (MinRFPipeline only)")
  return FlexTokConfig(
      image_size=grid * patch * downsample, vae=vae_cfg, latent_channels=latent_channels,
      downsample=downsample, patch_size=patch, enc_dim=enc_dim, enc_depth=enc_depth,
      dec_dim=dec_dim, dec_depth=dec_depth, head_dim=head_dim, mlp_ratio=mlp_ratio,
      num_registers=k, fsq_levels=levels, drop_quant_p=float(reg.get("drop_quant_p", 0.0)),
      enc_mask_mode=packers["encoder"][0], dec_mask_mode=packers["decoder"][0],
      enc_head_norm=_head_norm(enc_head, w_h), dec_register_ops=ops,
      dec_register_proj_bias=bool(lin.get("proj_bias", True)),
      nullcond="learned" if learned else "zero",
      cfg_dropout_p=float(null.get("dropout_prob", 0.0)), adaln_expansion=expansion,
      dec_head_norm=_head_norm(head, w_dh), dec_head_adaln=head.get("adaLN_emb_read_key") is not None,
      time_freq_dim=int(te.get("frequency_embedding_size", 256)),
      max_timestep=float(te.get("max_timestep", 1000.0)), keep_k_mode=keep_mode,
      noise_logit_normal=bool(noise.get("ln", True)),
      noise_stratified=bool(noise.get("stratisfied", False)),
      noise_mode_scale=float(noise.get("mode_scale", 0.0)),
      torch_names=tuple(sorted(names.items())))


def vae_config_from_metadata(vae_node: dict):
  """StableDiffusionVAE args -> KLVAEConfig: FlexTok builds the diffusers AutoencoderKL from
  its VAE_BASE_CFG (128/256/512/512, 2 layers per block, 32 groups, RGB) with the given
  latent_channels; scaling_factor comes from the args (None: only the hub repo's config.json
  knows it, and KLVAE.encode then says so)."""
  try:
    from models.image.kl_vae import KLVAEConfig
  except ImportError as e:
    raise MetadataError("this checkpoint has a VAE but models.image.kl_vae is not available; "
                        "use config_from_metadata(meta, with_vae=False) for the latent-space "
                        "model") from e
  scale = vae_node.get("scaling_factor")
  return KLVAEConfig(latent_channels=int(vae_node.get("latent_channels", 16)),
                     scaling_factor=None if scale is None else float(scale))


# What the released names fix (their depths and widths, register count, codes, patches); the
# rest of the architecture is taken from the header, since it cannot be verified offline.
IDENTITY_FIELDS = ("enc_dim", "enc_depth", "dec_dim", "dec_depth", "num_registers",
                   "fsq_levels", "patch_size")


def config_from_checkpoint(source, *, model_name: str = "flextok", with_vae: bool = True):
  """The registry hook: the model config of a checkpoint, from its header (or the repo dir's
  config.json when the file has no metadata). For a released name, the header must describe
  that model (IDENTITY_FIELDS), and the name's decode defaults are kept."""
  from zoo.configs import flextok as flextok_configs  # configs import the models, not converters
  source = _resolve(source, model_name)
  try:
    meta = read_metadata(source)
  except MetadataError:
    cfg_json = pathlib.Path(source) / "config.json"
    if not cfg_json.is_file():
      raise
    meta = _unwrap_hub_config(json.loads(cfg_json.read_text()))
  cfg = config_from_metadata(meta, with_vae=with_vae)
  if model_name not in flextok_configs.released_names():
    return cfg
  registered = flextok_configs.MODELS[model_name][0]
  diffs = [f"{f}: checkpoint {getattr(cfg, f)!r}, {model_name} {getattr(registered, f)!r}"
           for f in IDENTITY_FIELDS if getattr(cfg, f) != getattr(registered, f)]
  if diffs:
    raise common.CheckpointMismatchError(
        f"{source} holds another model than {model_name} (pick the matching name, or load any "
        "FlexTok checkpoint with zoo.convert.flextok.from_checkpoint):\n  " + "\n  ".join(diffs))
  return flextok_configs.with_header(model_name, cfg)


def _unwrap_hub_config(cfg):
  """FlexTokFromHub's config.json is its `config` dict, possibly nested under "config"."""
  if isinstance(cfg, dict) and "encoder" not in cfg and isinstance(cfg.get("config"), dict):
    return cfg["config"]
  return cfg


# -- name table and loading ------------------------------------------------------------------
def _blocks(t: str, p: str, depth: int, adaln: bool) -> list[Rule]:
  rules = []
  for i in range(depth):
    tb, pb = f"{t}.blocks.{i}", f"{p}.blocks.{i}"
    rules += [Rule(f"{tb}.attn.{n}.weight", f"{pb}.attn.{n}.kernel", LINEAR)
              for n in ("wq", "wk", "wv", "proj")]
    rules += [Rule(f"{tb}.mlp.{n}.weight", f"{pb}.mlp.{n}.kernel", LINEAR)
              for n in ("fc1", "fc2", "fc3")]
    if adaln:
      rules += linear_rules(f"{tb}.adaLN_modulation.1", f"{pb}.adaLN_modulation.1")
  return rules


def posemb_names(cfg: FlexTokConfig) -> list[str]:
  return [f"encoder.module_dict.{cfg.name_of('enc_posemb_module', 'enc_posemb_module')}.posembs",
          f"decoder.module_dict.{cfg.name_of('dec_posemb_module', 'dec_posemb_module')}.posembs"]


def table(cfg: FlexTokConfig) -> list[Rule]:
  """Official names -> NNX paths (the fixed sin-cos posembs are checked, not loaded)."""
  e = lambda role: f"encoder.module_dict.{cfg.name_of(role, role)}"
  d = lambda role: f"decoder.module_dict.{cfg.name_of(role, role)}"
  rules = linear_rules(f"{e('enc_patch_emb')}.patch_proj", "encoder.patch_proj")
  rules.append(Rule(f"{e('enc_register_module')}.registers", "encoder.registers"))
  rules += _blocks(e("enc_transformer"), "encoder", cfg.enc_depth, adaln=False)
  rules += linear_rules(f"{e('enc_to_latents')}.proj", "encoder.head")
  proj = linear_rules(f"{d('dec_from_latents')}.proj", "decoder.register_proj")
  rules += proj if cfg.dec_register_proj_bias else proj[:1]
  rules.append(Rule(f"{d('dec_nested_dropout')}.dropout_mask_token", "decoder.dropout_mask_token"))
  if cfg.nullcond == "learned":
    rules.append(Rule(f"{d('dec_nullcond')}.nullcond", "decoder.nullcond"))
  rules += linear_rules(f"{d('dec_patch_emb')}.patch_proj", "decoder.patch_proj")
  rules += linear_rules(f"{d('dec_time_embedder')}.mlp.0", "decoder.time_mlp.0")
  rules += linear_rules(f"{d('dec_time_embedder')}.mlp.2", "decoder.time_mlp.1")
  rules += _blocks(d("dec_transformer"), "decoder", cfg.dec_depth, adaln=True)
  if cfg.dec_head_adaln:
    rules += linear_rules(f"{d('dec_to_patches')}.adaLN_modulation.1", "decoder.head_adaln")
  rules += linear_rules(f"{d('dec_to_patches')}.proj", "decoder.head")
  if cfg.vae is not None:
    rules += _vae_rules(cfg)
  return rules


def _vae_rules(cfg) -> list[Rule]:
  try:
    from zoo.convert import kl_vae
  except ImportError as e:
    raise common.CheckpointMismatchError(
        "the model has a VAE but zoo.convert.kl_vae (its converter) is not available") from e
  # FlexTok's StableDiffusionVAE keeps the diffusers AutoencoderKL under `vae.vae.`.
  return [Rule(r.torch_name, f"vae.{r.path}", r.transform)
          for r in kl_vae.table(cfg.vae, VAE_TORCH_PREFIX)]


def load_state_dict(model, state_dict, *, model_name: str = "flextok"):
  """Checks the fixed posembs against ours, then fills every parameter through `table`."""
  cfg = model.config
  meta = getattr(state_dict, "metadata", None)
  if meta:  # the header says what the checkpoint is: a clear error before any tensor
    check_config(cfg, meta, model_name=model_name, source="the checkpoint header",
                 hint="build the model from the header with "
                      "zoo.convert.flextok.from_checkpoint(path)")
  state_dict = dict(state_dict)
  problems = []
  for name, dim in zip(posemb_names(cfg), (cfg.enc_dim, cfg.dec_dim)):
    if name not in state_dict:
      problems.append(f"missing from the checkpoint: {name}")
      continue
    got = np.asarray(state_dict.pop(name), np.float32)
    want = sincos_posemb(cfg.grid, cfg.grid, dim).transpose(2, 0, 1)[None]
    if got.shape != want.shape:
      problems.append(f"shape mismatch for {name}: checkpoint {got.shape}, model expects "
                      f"{want.shape}")
    elif not np.allclose(got, want, atol=1e-5):
      problems.append(f"{name} is not FlexTok's 2D sin-cos embedding (max diff "
                      f"{np.abs(got - want).max():.3g})")
  if cfg.vae is None:  # a latent-space model: a VAE in the checkpoint is not ours to load
    dropped = [k for k in state_dict if k.startswith(VAE_PREFIX)]
    for k in dropped:
      state_dict.pop(k)
  else:
    from zoo.convert import kl_vae
    state_dict = dict(kl_vae.normalize_legacy_names(state_dict, VAE_TORCH_PREFIX))
  if problems:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  common.load_state_dict(model, state_dict, table(cfg), model_name=model_name)


def check_config(cfg: FlexTokConfig, hf_config: dict, *, model_name: str, source="",
                 hint: str = "pick the matching name or pass config overrides"):
  """A Hydra config (repo config.json or the header) against `cfg`, before any tensor."""
  hf_config = _unwrap_hub_config(hf_config)
  if not isinstance(hf_config, dict) or "encoder" not in hf_config:
    return
  got = config_from_metadata(hf_config, with_vae=False)
  fields = [f.name for f in dataclasses.fields(FlexTokConfig)
            if f.name not in ("vae", "torch_names", "guidance_scale", "use_apg", "num_steps",
                              "eval_num_steps", "eval_guidance_scale", "remat")]
  diffs = [f"{f}: config.json {getattr(got, f)!r}, {model_name} {getattr(cfg, f)!r}"
           for f in fields if getattr(got, f) != getattr(cfg, f)]
  ours = {role: cfg.name_of(role, role) for role, _ in got.torch_names}
  if dict(got.torch_names) != ours:
    diffs.append(f"module names: checkpoint {dict(got.torch_names)}, {model_name} {ours}")
  if diffs:
    raise common.CheckpointMismatchError(
        f"{source} describes another model than {model_name} ({hint}):\n  "
        + "\n  ".join(diffs))


def from_checkpoint(source, *, with_vae: bool = True, **overrides):
  """A FlexTok built from the checkpoint's own header and filled with its weights."""
  from flax import nnx
  from models.image.flextok import FlexTok
  cfg = config_from_checkpoint(source, with_vae=with_vae)
  cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
  model = nnx.eval_shape(lambda: FlexTok(cfg, rngs=nnx.Rngs(0)))
  load_state_dict(model, read_checkpoint(source), model_name=str(source))
  return model
