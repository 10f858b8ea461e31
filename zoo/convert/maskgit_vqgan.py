"""maskgit-vqgan-imagenet-f16-256.bin -> MaskGitVQGAN."""
from models.image.maskgit_vqgan import MaskGitVQGANConfig
from zoo.convert import common
from zoo.convert.maskgit_cnn import decoder_rules, encoder_rules


def table(cfg: MaskGitVQGANConfig) -> list[common.Rule]:
  return (encoder_rules(cfg.cnn, "encoder", "encoder")
          + [common.Rule("quantize.embedding.weight", "quantize.embedding")]
          + decoder_rules(cfg.cnn, "decoder", "decoder"))


def load_state_dict(model, state_dict, *, model_name: str = "maskgit_vqgan_f16"):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)
