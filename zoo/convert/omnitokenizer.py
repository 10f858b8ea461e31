"""Official OmniTokenizer checkpoints (Lightning `.ckpt` files of the VQGAN) -> OmniTokenizer.

The architecture comes from the checkpoint's hyper-parameters (`{"args": Namespace}`, read
without running pickled code, zoo/convert/lightning.py); both spellings of the causal flags
are accepted (`causal_in_*` and the `casual_in_*` of the launch scripts, issues #13/#20).

Tensors the official inference path never reads are dropped by name: every attention's
`context_norm` (no cross-attention context), the temporal stacks' `spatial_rel_pos_bias`
(built because `spatial_pos` defaults to "rel", used only spatially), and the training
networks `image_discriminator.*`, `video_discriminator.*`, `perceptual_model.*` (returned by
`training_tensors` for fine-tuning), and for the VAE the VQ codebook the VQGAN builds anyway. Buffers are checked, not loaded: the LayerNorm `beta`s
must be zero (the official LayerNorm never learns them) and the window attention's
`relative_position_index` must be Swin's; a checkpoint that differs is an error.
"""
import dataclasses
import functools
import os
import pathlib

import numpy as np

from models.layers.omnitokenizer_blocks import relative_offsets
from models.video.omnitokenizer import OmniTokenizer, OmniTokenizerConfig
from zoo.convert import common
from zoo.convert.common import LINEAR, Rule, Transform, linear_rules, norm_rules
from zoo.convert.lightning import read_lightning_checkpoint

# Codebook state the official keeps in Python (never saved): set as for a trained codebook.
DERIVED = {"codebook.inited": np.float32, "codebook.calls": np.int32}
TRAINING_PREFIXES = ("image_discriminator.", "video_discriminator.", "perceptual_model.")
# torch's depthwise Conv3d [D, 1, 3, 3, 3] -> the PEG's [3, 3, 3, D].
DEPTHWISE = Transform("depthwise_conv3d", lambda a: a[:, 0].transpose(1, 2, 3, 0),
                      lambda s: (s[3], 1, s[0], s[1], s[2]))
_CAUSAL_FLAGS = {"causal_temporal": ("causal_in_temporal_transformer",
                                     "casual_in_temporal_transformer"),
                 "causal_peg": ("causal_in_peg", "casual_in_peg")}
# Flags whose other values build layers the zoo does not have (none of the releases use them).
_FIXED = {"patch_embed": "linear", "defer_temporal_pool": False, "defer_spatial_pool": False,
          "gen_upscale": None, "use_external_codebook": False, "image_channels": 3}


def _stack_rules(t: str, block: str, *, spatial_rel: bool) -> list[Rule]:
  rules = []
  for i, kind in enumerate(block):
    src, dst = f"{t}.layers.{i}", f"{t}.layers.{i}"
    if kind == "t":
      rules += [Rule(f"{src}.0.dsconv.weight", f"{dst}.peg.dsconv_kernel", DEPTHWISE),
                Rule(f"{src}.0.dsconv.bias", f"{dst}.peg.dsconv_bias"),
                Rule(f"{src}.1.norm.gamma", f"{dst}.attn.norm.scale"),
                Rule(f"{src}.1.to_q.weight", f"{dst}.attn.to_q.kernel", LINEAR),
                Rule(f"{src}.1.to_kv.weight", f"{dst}.attn.to_kv.kernel", LINEAR),
                Rule(f"{src}.1.to_out.weight", f"{dst}.attn.to_out.kernel", LINEAR),
                Rule(f"{src}.1.q_scale", f"{dst}.attn.q_scale"),
                Rule(f"{src}.1.k_scale", f"{dst}.attn.k_scale")]
      if spatial_rel:
        for j, name in enumerate(("net.0.0", "net.1.0", "net.2")):
          rules += linear_rules(f"{src}.1.spatial_rel_pos_bias.{name}",
                                f"{dst}.attn.spatial_rel_pos_bias.net.{j}")
    else:
      rules += [Rule(f"{src}.1.norm.gamma", f"{dst}.attn.norm.scale"),
                Rule(f"{src}.1.relative_position_bias_table",
                     f"{dst}.attn.relative_position_bias_table"),
                Rule(f"{src}.1.qkv.weight", f"{dst}.attn.qkv.kernel", LINEAR)]
      rules += linear_rules(f"{src}.1.proj", f"{dst}.attn.proj")
    rules += (norm_rules(f"{src}.3.0", f"{dst}.ff.norm")
              + [Rule(f"{src}.3.1.weight", f"{dst}.ff.proj_in.kernel", LINEAR),
                 Rule(f"{src}.3.4.weight", f"{dst}.ff.proj_out.kernel", LINEAR)])
  return rules + [Rule(f"{t}.norm_out.gamma", f"{t}.norm_out.scale")]


def _patch_embedding(src: str, dst: str) -> list[Rule]:
  return (norm_rules(f"{src}.1", f"{dst}.norm_in") + linear_rules(f"{src}.2", f"{dst}.proj")
          + norm_rules(f"{src}.3", f"{dst}.norm_out"))


def table(cfg: OmniTokenizerConfig) -> list[Rule]:
  rel = cfg.spatial_pos == "rel"
  t = "encoder"
  rules = (_patch_embedding(f"{t}.to_patch_emb_first_frame", f"{t}.to_patch_emb_first_frame")
           + _patch_embedding(f"{t}.to_patch_emb", f"{t}.to_patch_emb")
           + _stack_rules(f"{t}.enc_spatial_transformer", cfg.enc_block, spatial_rel=rel)
           + _stack_rules(f"{t}.enc_temporal_transformer", "t" * cfg.temporal_depth,
                          spatial_rel=False)
           + _stack_rules("decoder.dec_spatial_transformer", cfg.dec_block, spatial_rel=rel)
           + _stack_rules("decoder.dec_temporal_transformer", "t" * cfg.temporal_depth,
                          spatial_rel=False)
           + linear_rules("decoder.to_pixels_first_frame.0", "decoder.to_pixels_first_frame")
           + linear_rules("decoder.to_pixels.0", "decoder.to_pixels")
           + linear_rules("pre_vq_conv.1", "pre_vq_conv")
           + linear_rules("post_vq_conv.1", "post_vq_conv"))
  if not cfg.use_vae:
    rules += [Rule(name, name) for name in ("codebook.embeddings", "codebook.N",
                                            "codebook.z_avg", "codebook.codebook_usage",
                                            *DERIVED)]
  return rules


def _unused_by_inference(name: str) -> bool:
  return (".context_norm." in name or name.startswith(TRAINING_PREFIXES)
          or ("_temporal_transformer." in name and ".spatial_rel_pos_bias." in name))


def training_tensors(state_dict: dict) -> dict:
  """The discriminators' and the LPIPS net's tensors of a checkpoint, for fine-tuning."""
  return {k: v for k, v in state_dict.items() if k.startswith(TRAINING_PREFIXES)}


def load_state_dict(model: OmniTokenizer, state_dict: dict, *, model_name: str = "omnitokenizer"):
  cfg = model.config
  problems = []
  want_index = relative_offsets(cfg.window_size, cfg.window_size)[1]
  kept = {}
  for name, value in state_dict.items():
    if _unused_by_inference(name) or (cfg.use_vae and name.startswith("codebook.")):
      continue
    if name.endswith(".beta"):
      if np.any(np.asarray(value) != 0):
        problems.append(f"{name} is not zero (the official LayerNorm's beta is a zero buffer; "
                        "this checkpoint was made by other code)")
    elif name.endswith(".relative_position_index"):
      if np.asarray(value).shape != want_index.shape or np.any(np.asarray(value) != want_index):
        problems.append(f"{name} is not Swin's relative-position index for a "
                        f"{cfg.window_size}x{cfg.window_size} window")
    else:
      kept[name] = value
  if problems:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  if not cfg.use_vae and "codebook.embeddings" in kept:  # a trained codebook: no re-init
    kept.update({name: np.ones((), dtype) for name, dtype in DERIVED.items()})
  common.load_state_dict(model, kept, table(cfg), model_name=model_name)


def config_from_hparams(hparams: dict, *, source="the checkpoint") -> OmniTokenizerConfig:
  """OmniTokenizerConfig from the VQGAN's argparse hyper-parameters (with the defaults the
  VQGAN fills in for older checkpoints)."""
  args = hparams.get("args", hparams)
  if not isinstance(args, dict) or "embedding_dim" not in args:
    raise common.CheckpointMismatchError(
        f"{source}: no OmniTokenizer hyper-parameters (hyper_parameters['args'] with "
        f"embedding_dim; got keys {sorted(args)[:10] if isinstance(args, dict) else args!r})")
  unsupported = [f"{k}={args[k]!r} (the zoo builds {v!r})" for k, v in _FIXED.items()
                 if k in args and args[k] != v]
  flags = {}
  for field, names in _CAUSAL_FLAGS.items():
    given = {n: bool(args[n]) for n in names if n in args}
    if not given:
      unsupported.append(f"neither {names[0]} nor {names[1]} is set")
    elif len(set(given.values())) > 1:
      unsupported.append(f"{names[0]} and {names[1]} disagree: {given}")
    else:
      flags[field] = next(iter(given.values()))
  if unsupported:
    raise common.CheckpointMismatchError(
        f"{source} describes an OmniTokenizer variant the zoo does not build:\n  "
        + "\n  ".join(unsupported))
  spatial = int(args.get("spatial_depth", 4))
  try:
    return OmniTokenizerConfig(
        resolution=int(args.get("resolution", 256)), patch_size=int(args["patch_size"]),
        temporal_patch_size=int(args["temporal_patch_size"]),
        width=int(args["embedding_dim"]), heads=int(args.get("heads", 8)),
        dim_head=int(args.get("dim_head", 64)), ff_mult=float(args.get("ff_mult", 4.0)),
        enc_block=str(args.get("enc_block") or "t" * spatial),
        dec_block=str(args.get("dec_block") or "t" * spatial),
        temporal_depth=int(args.get("temporal_depth", 4)),
        window_size=int(args.get("twod_window_size", 4)),
        spatial_pos=str(args.get("spatial_pos", "rel")),
        codebook_size=int(args["n_codes"]), codebook_dim=int(args["codebook_dim"]),
        l2_code=bool(args.get("l2_code", False)), use_vae=bool(args.get("use_vae", False)),
        kl_weight=float(args.get("kl_weight") or 1e-6),
        restarts=not bool(args.get("no_random_restart", False)),
        restart_threshold=float(args.get("restart_thres", 1.0)), **flags)
  except (KeyError, ValueError) as e:
    raise common.CheckpointMismatchError(f"{source}: unusable hyper-parameters ({e})") from e


def _checkpoint_path(source, model_name) -> pathlib.Path:
  """A .ckpt given as itself, as a directory holding the release's file, or as the HF repo id
  (downloaded, or found in the HF cache when offline)."""
  from zoo.configs.omnitokenizer import HF_REPO, RELEASED_FILES
  filename = RELEASED_FILES.get(model_name, (None,))[0]
  where = (f"download {filename} from https://huggingface.co/{HF_REPO}" if filename else
           f"the released .ckpt files are at https://huggingface.co/{HF_REPO}")
  if source is None:
    raise FileNotFoundError(f"{model_name}: pass checkpoint= the path of its .ckpt file ({where})")
  path = pathlib.Path(source)
  if path.is_dir():
    path = path / filename if filename and (path / filename).is_file() else path
    if path.is_dir():
      ckpts = sorted(path.glob("*.ckpt"))
      if len(ckpts) != 1:
        raise FileNotFoundError(f"{source} holds {len(ckpts)} .ckpt files and no {filename}; "
                                "pass the file itself")
      path = ckpts[0]
  elif not path.exists() and str(source) == HF_REPO and filename:
    return _download(filename, where)
  if not path.is_file():
    raise FileNotFoundError(f"checkpoint file not found: {path} ({where})")
  return path


def _download(filename: str, where: str) -> pathlib.Path:
  from zoo.configs.omnitokenizer import HF_REPO
  offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
  try:
    from huggingface_hub import hf_hub_download
    return pathlib.Path(hf_hub_download(HF_REPO, filename, local_files_only=offline))
  except Exception as e:  # no network or not cached: say what to fetch by hand
    raise FileNotFoundError(f"{HF_REPO}/{filename}: could not download it "
                            f"({type(e).__name__}); {where} and pass its path") from e


@functools.lru_cache(maxsize=1)
def _read(path: str, mtime: float):
  return read_lightning_checkpoint(path)


def read_ckpt(source, *, model_name: str = "omnitokenizer") -> tuple[dict, dict]:
  """(state dict, hyper-parameters) of a released .ckpt; read once for config and weights."""
  path = _checkpoint_path(source, model_name)
  return _read(str(path), os.path.getmtime(path))


def read_checkpoint(source, *, model_name: str = "omnitokenizer") -> dict:
  state_dict = read_ckpt(source, model_name=model_name)[0]
  _read.cache_clear()  # read after the config: the weights need not stay cached
  return state_dict


def config_from_checkpoint(source, *, model_name: str = "omnitokenizer") -> OmniTokenizerConfig:
  """The registry hook: the architecture from the checkpoint's hyper-parameters."""
  from zoo.configs import omnitokenizer as omni_configs
  registered = omni_configs.MODELS.get(model_name, (OmniTokenizerConfig(), None))[0]
  state_dict, hparams = read_ckpt(source, model_name=model_name)
  cfg = config_from_hparams(hparams, source=source)
  # Training-only settings the checkpoint does not carry keep the registered values.
  return dataclasses.replace(cfg, remat=registered.remat)
