"""Official TiTok checkpoints (HF model.safetensors or raw .bin state dicts) -> TiTok."""
from models.image.titok import VIT_SIZES, TiTokConfig
from zoo.convert import common
from zoo.convert.common import CONV1X1_AS_DENSE, CONV2D, Rule, linear_rules, norm_rules
from zoo.convert.maskgit_cnn import decoder_rules


def _vit_block(t: str, p: str) -> list[Rule]:
  return (norm_rules(f"{t}.ln_1", f"{p}.ln_1")
          + common.multihead_attention_rules(f"{t}.attn", f"{p}.attn")
          + norm_rules(f"{t}.ln_2", f"{p}.ln_2")
          + linear_rules(f"{t}.mlp.c_fc", f"{p}.mlp.c_fc")
          + linear_rules(f"{t}.mlp.c_proj", f"{p}.mlp.c_proj"))


def _vit(t: str, size: str, embeddings: tuple[str, ...]) -> list[Rule]:
  rules = [Rule(f"{t}.{e}", f"{t}.{e}") for e in embeddings]
  rules += norm_rules(f"{t}.ln_pre", f"{t}.ln_pre") + norm_rules(f"{t}.ln_post", f"{t}.ln_post")
  for i in range(VIT_SIZES[size][1]):
    rules += _vit_block(f"{t}.transformer.{i}", f"{t}.transformer.{i}")
  return rules


def table(cfg: TiTokConfig) -> list[Rule]:
  embeddings = ("class_embedding", "positional_embedding", "latent_token_positional_embedding")
  rules = [Rule("latent_tokens", "latent_tokens")]
  rules += _vit("encoder", cfg.encoder_size, embeddings)
  rules += [Rule("encoder.patch_embed.weight", "encoder.patch_embed.kernel", CONV2D),
            Rule("encoder.patch_embed.bias", "encoder.patch_embed.bias")]
  rules += linear_rules("encoder.conv_out", "encoder.conv_out", CONV1X1_AS_DENSE)
  if cfg.quantize_mode == "vq":
    rules.append(Rule("quantize.embedding.weight", "quantize.embedding"))
  rules += _vit("decoder", cfg.decoder_size, embeddings + ("mask_token",))
  rules += linear_rules("decoder.decoder_embed", "decoder.decoder_embed")
  if cfg.is_legacy:  # ffn = Conv 1x1, Tanh, Conv 1x1 -> our ffn[0], ffn[1].
    rules += linear_rules("decoder.ffn.0", "decoder.ffn.0", CONV1X1_AS_DENSE)
    rules += linear_rules("decoder.ffn.2", "decoder.ffn.1", CONV1X1_AS_DENSE)
  else:
    rules += linear_rules("decoder.ffn.0", "decoder.ffn.0", CONV1X1_AS_DENSE)
    rules += [Rule("decoder.conv_out.weight", "decoder.conv_out.kernel", CONV2D),
              Rule("decoder.conv_out.bias", "decoder.conv_out.bias")]
  if cfg.pixel_decoder:
    rules.append(Rule("pixel_quantize.embedding.weight", "pixel_quantize.embedding"))
    rules += decoder_rules(cfg.pixel_cnn, "pixel_decoder", "pixel_decoder")
  return rules


def load_state_dict(model, state_dict, *, model_name: str = "titok"):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def check_config(cfg: TiTokConfig, hf_config: dict, *, model_name: str, source=""):
  """Compares a released config.json (`model.vq_model`, crop size) with `cfg` before any tensor."""
  vq = (hf_config.get("model") or {}).get("vq_model")
  if not isinstance(vq, dict):
    return
  # Official defaults for keys the older configs leave out (modeling/titok.py).
  preprocessing = (hf_config.get("dataset") or {}).get("preprocessing") or {}
  got = {"quantize_mode": "vq", "is_legacy": True, **vq,
         "crop_size": preprocessing.get("crop_size")}
  want = {"vit_enc_model_size": cfg.encoder_size, "vit_dec_model_size": cfg.decoder_size,
          "vit_enc_patch_size": cfg.patch_size, "vit_dec_patch_size": cfg.patch_size,
          "num_latent_tokens": cfg.num_latent_tokens, "quantize_mode": cfg.quantize_mode,
          "token_size": cfg.token_size, "is_legacy": cfg.is_legacy, "crop_size": cfg.image_size}
  if cfg.quantize_mode == "vq":
    want["codebook_size"] = cfg.codebook_size
  diffs = [f"{k}: config.json {got[k]!r}, {model_name} {v!r}" for k, v in want.items()
           if got.get(k) is not None and got[k] != v]
  if diffs:
    raise common.CheckpointMismatchError(
        f"{source}/config.json describes another model than {model_name} (pick the matching "
        "name or config overrides):\n  " + "\n  ".join(diffs))
