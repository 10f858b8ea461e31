"""Official LARP checkpoints (HF PyTorchModelHubMixin: config.json + model.safetensors) -> LARP.

The architecture comes from config.json (the mixin saves LARPTokenizer's constructor
arguments). The three fixed sin-cos buffers the state dict carries (`encoder_patch_pe`,
`decoder_latent_pe`, `decoder_patch_query_embed`) are not loaded: the model computes them,
and the loader checks that the checkpoint's equal them, so a checkpoint made with other
position embeddings is an error rather than a silent difference.
"""
import dataclasses
import json
import pathlib

import numpy as np

from models.video.gptc import SIZES as GPTC_SIZES
from models.video.gptc import gptc_config
from models.video.larp import LARP, LARPConfig
from zoo.convert import common
from zoo.convert.common import LINEAR, Rule, Transform, linear_rules, norm_rules

BUFFERS = ("encoder_patch_pe", "decoder_latent_pe", "decoder_patch_query_embed")
# Constructor flags of LARPTokenizer that the zoo builds only in the released setting.
_FIXED_FLAGS = {"learned_encoder_patch_pe": False, "learned_encoder_latent_query_embed": True,
                "learned_decoder_latent_pe": False, "learned_decoder_patch_query_embed": False,
                "use_encoder_patch_token_type_embed": False,
                "use_encoder_latent_query_token_type_embed": False,
                "use_decoder_latent_token_type_embed": False,
                "use_decoder_patch_query_token_type_embed": True,
                "encoder_query_gaussian_init": True}


def _patch_embed(cfg: LARPConfig) -> Transform:
  """Conv3d [O, 3, pt, p, p] -> the dense kernel over flattened (pt, p, p, c) patches."""
  pt, p = cfg.temporal_patch_size, cfg.patch_size
  return Transform("conv3d_as_patch_dense",
                   lambda a: a.transpose(2, 3, 4, 1, 0).reshape(-1, a.shape[0]),
                   lambda s: (s[1], 3, pt, p, p))


def _timm_blocks(t: str, depth: int) -> list[Rule]:
  rules = []
  for i in range(depth):
    b = f"{t}.blocks.{i}"
    rules += (norm_rules(f"{b}.norm1", f"{b}.norm1")
              + [Rule(f"{b}.attn.qkv.weight", f"{b}.attn.qkv.kernel", LINEAR)]
              + linear_rules(f"{b}.attn.proj", f"{b}.attn.proj")
              + norm_rules(f"{b}.norm2", f"{b}.norm2")
              + linear_rules(f"{b}.mlp.fc1", f"{b}.mlp.fc1")
              + linear_rules(f"{b}.mlp.fc2", f"{b}.mlp.fc2"))
  return rules


def _gptc(t: str, num_layers: int) -> list[Rule]:
  rules = linear_rules(f"{t}.input_proj", f"{t}.input_proj") + [Rule(f"{t}.pos_emb",
                                                                      f"{t}.pos_emb")]
  for i in range(num_layers):
    b = f"{t}.blocks.{i}"
    rules += norm_rules(f"{b}.ln1", f"{b}.ln1") + norm_rules(f"{b}.ln2", f"{b}.ln2")
    for name in ("key", "query", "value", "proj"):
      rules += linear_rules(f"{b}.attn.{name}", f"{b}.attn.{name}")
    rules += linear_rules(f"{b}.mlp.0", f"{b}.mlp.fc1") + linear_rules(f"{b}.mlp.2",
                                                                       f"{b}.mlp.fc2")
  return rules + norm_rules(f"{t}.ln_f", f"{t}.ln_f") + linear_rules(f"{t}.head", f"{t}.head")


def table(cfg: LARPConfig) -> list[Rule]:
  rules = [Rule("x_embedder.proj.weight", "x_embedder.proj.kernel", _patch_embed(cfg)),
           Rule("x_embedder.proj.bias", "x_embedder.proj.bias"),
           Rule("encoder_latent_query_embed", "encoder_latent_query_embed")]
  rules += _timm_blocks("encoder", cfg.encoder_depth)
  rules += linear_rules("bottleneck.in_linear", "bottleneck.in_linear")
  rules += linear_rules("bottleneck.out_linear", "bottleneck.out_linear")
  if cfg.regularizer == "vq":
    rules.append(Rule("bottleneck.regularizer.embedding.weight",
                      "bottleneck.regularizer.embedding"))
  rules += _timm_blocks("decoder", cfg.decoder_depth)
  rules.append(Rule("decoder_patch_query_token_type_embed",
                    "decoder_patch_query_token_type_embed"))
  rules += norm_rules("final_layer.norm_final", "final_layer.norm_final")
  rules += linear_rules("final_layer.linear", "final_layer.linear")
  if cfg.prior:
    rules += _gptc("prior_model", gptc_config(cfg.prior).num_layers)
  return rules


def buffer_values(model: LARP) -> dict[str, np.ndarray]:
  """The official buffers' values as this model computes them, in their [1, N, W] shape."""
  return {"encoder_patch_pe": model.encoder_patch_pe()[None],
          "decoder_latent_pe": model.decoder_latent_pe()[None],
          "decoder_patch_query_embed": model.decoder_patch_query_embed()[None]}


def load_state_dict(model: LARP, state_dict: dict, *, model_name: str = "larp"):
  problems = []
  for name, want in buffer_values(model).items():
    if name not in state_dict:
      continue  # a state dict saved without buffers: nothing to compare
    got = np.asarray(state_dict[name])
    if got.shape != want.shape:
      problems.append(f"shape mismatch for {name}: checkpoint {got.shape}, model {want.shape}")
    elif not np.allclose(got, want, rtol=0, atol=1e-5):
      problems.append(f"{name}: the checkpoint's fixed position embedding differs from the "
                      f"sin-cos one by up to {np.abs(got - want).max():.3g} (learned or "
                      "another layout; this model only builds the released fixed ones)")
  if problems:
    raise common.CheckpointMismatchError(
        f"checkpoint does not fit {model_name}:\n  " + "\n  ".join(problems))
  state_dict = {k: v for k, v in state_dict.items() if k not in BUFFERS}
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def config_from_hub(hub: dict, *, source="config.json") -> LARPConfig:
  """LARPConfig from the mixin's config.json (LARPTokenizer's constructor arguments)."""
  if not isinstance(hub, dict) or "bottleneck" not in hub:
    raise common.CheckpointMismatchError(
        f"{source} is not a LARP tokenizer config (no 'bottleneck' entry; keys "
        f"{sorted(hub)[:10] if isinstance(hub, dict) else type(hub).__name__})")
  unsupported = [f"{k}={hub[k]!r} (the zoo builds {v!r})" for k, v in _FIXED_FLAGS.items()
                 if k in hub and hub[k] != v]
  for enc, dec in (("temporal_patch_size", "decoder_temporal_patch_size"),
                   ("patch_size", "decoder_patch_size")):
    if hub.get(dec, hub.get(enc)) != hub.get(enc, hub.get(dec)):
      unsupported.append(f"{dec}={hub[dec]!r} differs from {enc}={hub[enc]!r}")
  if hub.get("in_channels", 3) != 3:
    unsupported.append(f"in_channels={hub['in_channels']!r} (RGB only)")
  bottleneck = hub["bottleneck"]["args"]
  reg = bottleneck.get("regularizer") or {}
  reg_name = str(reg.get("name", "none")).lower()
  if reg_name not in ("vq", "skl"):
    unsupported.append(f"regularizer {reg_name!r} (the zoo has 'vq' and 'skl')")
  if str(bottleneck.get("norm") or "none").lower() not in ("none", "no"):
    unsupported.append(f"bottleneck norm {bottleneck['norm']!r}")
  reg_args = reg.get("args") or {}
  if reg_name == "vq" and not (reg_args.get("l2_normalized") and reg_args.get("stochastic")):
    unsupported.append("a VQ that is not l2-normalised and stochastic")
  prior = hub.get("prior_model") or {}
  prior_name = prior.get("name")
  if str(prior_name).lower() in ("none", "no", "null", ""):
    prior_name = None
  if prior_name is not None and prior_name not in GPTC_SIZES:
    unsupported.append(f"prior {prior_name!r} (GPT-C sizes: {sorted(GPTC_SIZES)})")
  if unsupported:
    raise common.CheckpointMismatchError(
        f"{source} describes a LARP variant the zoo does not build:\n  "
        + "\n  ".join(unsupported))
  kwargs = dict(
      input_size=hub.get("input_size", 128), frame_num=hub.get("frame_num", 16),
      temporal_patch_size=hub.get("temporal_patch_size", 4),
      patch_size=hub.get("patch_size", 8), num_tokens=hub.get("bottleneck_token_num", 1024),
      encoder_width=int(hub.get("encoder_hidden_size", 768)),
      encoder_heads=int(hub.get("encoder_num_heads", 12)),
      encoder_depth=int(hub.get("encoder_depth", 6)),
      decoder_width=int(hub.get("decoder_hidden_size", 768)),
      decoder_heads=int(hub.get("decoder_num_heads", 12)),
      decoder_depth=int(hub.get("decoder_depth", 6)),
      bottleneck_dim=int(bottleneck["bottleneck_dim"]),
      regularizer="vq" if reg_name == "vq" else "kl",
      latent_pe_base=float(hub.get("latent_pe_scale_factor", 10000)), prior=prior_name)
  if reg_name == "vq":
    kwargs.update(codebook_size=int(reg_args["codebook_size"]),
                  stochastic_temperature=float(reg_args.get("stochastic_temperature", 1.0)),
                  commitment_weight=float(reg_args.get("commitment_loss_weight", 0.25)),
                  codebook_weight=float(reg_args.get("codebook_loss_weight", 1.0)))
  if prior_name is not None:
    kwargs.update(prior_rounds=int(prior.get("n_rounds", 1)),
                  prior_avg_over_rounds=bool(prior.get("avg_loss_over_rounds", True)),
                  mix_ss_max_ratio=float(prior.get("mix_ss_max_ratio", 0.5)),
                  mix_ss_peak_steps_ratio=float(prior.get("mix_ss_peak_steps_ratio", 0.3)),
                  latent_ce_temperature=float(prior.get("latent_ce_temperature", 1.0)),
                  prior_dropout=0.0 if prior.get("no_dropout") else 0.1)
    if not prior.get("use_mix_ss", True):  # the official's ratio 1 from the first step
      kwargs.update(mix_ss_max_ratio=1.0, mix_ss_peak_steps_ratio=0.0)
  return LARPConfig(**kwargs)


def _hub_config_file(source) -> pathlib.Path | None:
  if source is None:
    return None
  path = pathlib.Path(source)
  if path.is_dir():
    return path / "config.json" if (path / "config.json").is_file() else None
  if path.is_file():  # a weight file: its repo directory's config.json
    sibling = path.parent / "config.json"
    return sibling if sibling.is_file() else None
  if str(source).count("/") == 1 and not str(source).startswith((".", "/")):  # a repo id
    try:
      from huggingface_hub import hf_hub_download
      return pathlib.Path(hf_hub_download(str(source), "config.json"))
    except Exception as e:
      raise FileNotFoundError(f"{source}/config.json: could not fetch it ({type(e).__name__}); "
                              "download the repo and pass its directory as checkpoint=") from e
  return None


def config_from_checkpoint(source, *, model_name: str = "larp") -> LARPConfig:
  """The registry hook: the architecture from config.json beside the weights; without one,
  the registered name's config."""
  from zoo.configs import larp as larp_configs
  cfg_file = _hub_config_file(source)
  registered = larp_configs.MODELS.get(model_name, (LARPConfig(), None))[0]
  if cfg_file is None:
    return registered
  try:
    hub = json.loads(cfg_file.read_text())
  except (ValueError, UnicodeDecodeError) as e:
    raise common.CheckpointMismatchError(f"{cfg_file}: not valid JSON ({e})") from e
  cfg = config_from_hub(hub, source=cfg_file)
  # Training-only settings the config.json does not carry keep the registered values.
  return dataclasses.replace(cfg, remat=registered.remat)
