"""Name table of the MaskGIT-VQGAN CNN encoder/decoder (the names match the PyTorch ones)."""
from models.layers.maskgit_cnn import MaskGitCnnConfig
from zoo.convert.common import CONV2D, Rule, norm_rules


def _conv(torch_prefix, path, bias=True):
  rules = [Rule(f"{torch_prefix}.weight", f"{path}.kernel", CONV2D)]
  return rules + ([Rule(f"{torch_prefix}.bias", f"{path}.bias")] if bias else [])


def _resblock(t, p, has_shortcut):
  rules = norm_rules(f"{t}.norm1", f"{p}.norm1") + _conv(f"{t}.conv1", f"{p}.conv1", bias=False)
  rules += norm_rules(f"{t}.norm2", f"{p}.norm2") + _conv(f"{t}.conv2", f"{p}.conv2", bias=False)
  if has_shortcut:
    rules += _conv(f"{t}.nin_shortcut", f"{p}.nin_shortcut", bias=False)
  return rules


def encoder_rules(cfg: MaskGitCnnConfig, t: str, p: str) -> list[Rule]:
  rules = _conv(f"{t}.conv_in", f"{p}.conv_in", bias=False)
  ins = (1,) + tuple(cfg.channel_mult)
  for i, mult in enumerate(cfg.channel_mult):
    for j in range(cfg.num_res_blocks):
      changes = j == 0 and ins[i] != mult
      rules += _resblock(f"{t}.down.{i}.block.{j}", f"{p}.down.{i}.block.{j}", changes)
  for j in range(cfg.num_res_blocks):
    rules += _resblock(f"{t}.mid.{j}", f"{p}.mid.{j}", False)
  return rules + norm_rules(f"{t}.norm_out", f"{p}.norm_out") + _conv(f"{t}.conv_out",
                                                                      f"{p}.conv_out")


def decoder_rules(cfg: MaskGitCnnConfig, t: str, p: str) -> list[Rule]:
  rules = _conv(f"{t}.conv_in", f"{p}.conv_in")
  for j in range(cfg.num_res_blocks):
    rules += _resblock(f"{t}.mid.{j}", f"{p}.mid.{j}", False)
  mult = cfg.channel_mult
  for i in range(len(mult)):
    block_in = mult[-1] if i == len(mult) - 1 else mult[i + 1]
    for j in range(cfg.num_res_blocks):
      changes = j == 0 and block_in != mult[i]
      rules += _resblock(f"{t}.up.{i}.block.{j}", f"{p}.up.{i}.block.{j}", changes)
    if i != 0:
      rules += _conv(f"{t}.up.{i}.upsample_conv", f"{p}.up.{i}.upsample_conv")
  return rules + norm_rules(f"{t}.norm_out", f"{p}.norm_out") + _conv(f"{t}.conv_out",
                                                                      f"{p}.conv_out")
