"""KARL-style adaptive length: a halting head trained on a frozen One-D-Piece tokenizer.

  python train.py --config zoo/configs/one_d_piece.py:tiny --workdir /tmp/odp
  python train.py --config zoo/configs/karl.py:tiny --config.base_from=/tmp/odp --workdir /tmp/k

Only the head trains (config.frozen = ("base",)); the base's EMA weights come from the
One-D-Piece run in `base_from`. No head weights are released (KARL trains its whole encoder
with the head and ships Dropbox `.pth` files of that), so no name has an hf repo.
"""
import dataclasses

import ml_collections
from flax import nnx

from models.image.adaptive_length import (AdaptiveLengthConfig, AdaptiveLengthTokenizer,
                                          HaltingHeadConfig)
from zoo.configs import one_d_piece


def _tiny_base():
  """The base the tiny One-D-Piece recipe trains (its model overrides applied), so that a
  workdir of `one_d_piece.py:tiny` fits `adaptive_one_d_piece_tiny` whatever the lead tunes."""
  recipe = one_d_piece.get_config("tiny")
  return dataclasses.replace(one_d_piece.MODELS[recipe.model][0],
                             **recipe.model_overrides.to_dict())


# The released One-D-Piece tokenizers' per-image MSE in [0, 1] spans ~1e-3 (256 tokens) to
# ~5e-2 (a few tokens): a head width of 256 and two layers are ours, not KARL's. The error
# curve every 8 lengths (33 decodes per image, 4 lengths per batched decode) keeps a step near
# a few hundred decoder passes per image; the targets then round k* up to the grid.
_HEAD_256 = HaltingHeadConfig(width=256, num_layers=2, num_heads=8, mlp_hidden=512,
                              min_target_error=5e-4, max_target_error=1e-1,
                              eval_target_error=5e-3, conditions_per_image=8, curve_stride=8,
                              lengths_per_decode=4)
MODELS = {
    "adaptive_one_d_piece_tiny": (AdaptiveLengthConfig(
        base=_tiny_base(), head=HaltingHeadConfig(
            width=64, num_layers=1, num_heads=4, mlp_hidden=128, min_target_error=1e-3,
            max_target_error=1e-1, eval_target_error=1e-2)), None),
    **{f"adaptive_one_d_piece_{s}256": (AdaptiveLengthConfig(
        base=one_d_piece.MODELS[f"one_d_piece_{s}256"][0], head=_HEAD_256), None)
       for s in ("s", "b", "l")},
}


def build(cfg, rngs, dtype=None):
  return AdaptiveLengthTokenizer(cfg, rngs=rngs, dtype=dtype)


class converter:
  """The registry's converter API for a zoo-saved model: the base's official TiTok names under
  `base.` (so a One-D-Piece state dict prefixed with `base.` fills it) and the head's own
  NNX paths under `halting_head.` (there is no official head layout)."""

  @staticmethod
  def table(cfg: AdaptiveLengthConfig):
    from zoo.convert import titok as titok_convert
    from zoo.convert.common import Rule, model_params
    rules = [dataclasses.replace(r, torch_name=f"base.{r.torch_name}", path=f"base.{r.path}")
             for r in titok_convert.table(cfg.base)]
    head = nnx.eval_shape(lambda: AdaptiveLengthTokenizer(cfg, rngs=nnx.Rngs(0)).halting_head)
    rules += [Rule(f"halting_head.{p}", f"halting_head.{p}") for p in model_params(head)]
    return rules

  @staticmethod
  def load_state_dict(model, state_dict, *, model_name: str = "adaptive_length"):
    from zoo.convert import common
    common.load_state_dict(model, state_dict, converter.table(model.config),
                           model_name=model_name)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Training config of the halting head:

    tiny                              on a `one_d_piece.py:tiny` workdir (set base_from)
    adaptive_one_d_piece_{s,b,l}256   on a released One-D-Piece (base_from: a workdir holding
                                      it, e.g. one fine-tuned or loaded and saved by the zoo)
  """
  arg = arg or "tiny"
  name = "adaptive_one_d_piece_tiny" if arg == "tiny" else arg
  if name not in MODELS:
    raise ValueError(f"unknown config {arg!r}; choose 'tiny' or one of {sorted(MODELS)}")
  tiny = name.endswith("_tiny")
  base = one_d_piece.get_config("tiny" if tiny else name.removeprefix("adaptive_"))
  c = ml_collections.ConfigDict(base.to_dict())
  c.model = name
  c.recipe = "halting"
  c.model_overrides = ml_collections.ConfigDict()  # the base's overrides are in MODELS
  c.base_from = ""  # the One-D-Piece workdir whose EMA weights become params["base"]
  c.frozen = ("base",)
  c.loss.update(pixel_l2=0.0, quantizer=0.0, perceptual=0.0, halting=1.0)
  c.gan.enabled = False
  c.codebook_reanchor = False
  c.pixel_decoder_from_teacher = False
  c.init_from = ""
  if tiny:
    c.update(total_steps=300, batch_size=16, learning_rate=2e-3, end_learning_rate=1e-4,
             warmup_steps=20, weight_decay=0.0, eval_every=300, checkpoint_every=300,
             num_eval_images=32, eval_batch_size=32)
  else:
    # KARL run_scripts/latent_distillation_pretrain.sh + main_pretrain.py: global batch
    # 8 x 64, lr = blr 1e-4 x 512 / 256, AdamW betas (0.9, 0.95), weight decay 0.05,
    # grad clip 3.0, cosine to min_lr 0. KARL's 200 epochs (20 warmup) are on ImageNet-100
    # for the whole tokenizer; steps for a head alone are not known: 50k (~200 epochs of
    # ImageNet-100 at 512) with 5k warmup is our guess.
    c.update(total_steps=50_000, batch_size=512, learning_rate=2e-4, end_learning_rate=0.0,
             warmup_steps=5_000, beta1=0.9, beta2=0.95, weight_decay=0.05, grad_clip_norm=3.0,
             eval_every=5_000, checkpoint_every=5_000)
  return c
