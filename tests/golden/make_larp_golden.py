"""Golden outputs of the official LARP tokenizer (hywang66/LARP) on seeded weights.

The official `models/{larp_tokenizer,bottleneck,transformer,embed,gptc}.py` are imported from a
local checkout (never copied), through larp_official.py (stand-ins for the imports that cannot
run here: the training losses, `utils`, torchvision under timm).

Two small LARPs in the official key layout, filled from `zoo/convert/seeded.py`:
  * VQ with the GPT-C-XXS prior (the smallest official size): 8 frames of 32x32, patches
    4x8x8 (32 patch tokens), 32 latent tokens, width 64, 2+2 blocks, 64 codes of dim 8;
  * the same with the summed-KL ("skl") bottleneck and no prior.
Input: two 8-frame clips that pan across scikit-image's astronaut and coffee photos.

  /tmp/venv/bin/pip install timm --no-deps easydict einops huggingface_hub
  git clone https://github.com/hywang66/LARP /tmp/larp_official
  /tmp/venv/bin/python tests/golden/make_larp_golden.py --official_repo /tmp/larp_official

Writes, next to this file:
  larp.npz                 clips; the fixed sin-cos buffers the official model builds; VQ: ids, reconstructions, prior logits (round 0, teacher
                           forced), and ids / reconstructions of the first 4 frames alone
                           (encode_eval / decode_eval); KL: posterior means, reconstructions
                           of the means
  larp_vq_config.json      the VQ model's constructor arguments as the hub mixin saves them
  larp_golden_shapes.json  {vq|kl: {key: shape}} of both models' state dicts
"""
import argparse
import json
import pathlib

import numpy as np

from golden_common import load_seeded_module, photos
from larp_official import import_official

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
FRAMES, SIZE = 8, 32
SMALL = dict(bottleneck_token_num=32, input_size=SIZE, frame_num=FRAMES, temporal_patch_size=4,
             patch_size=8, decoder_temporal_patch_size=4, decoder_patch_size=8, in_channels=3,
             transformer_name="transformer_encoder_parallel", encoder_name="none",
             decoder_name="none", encoder_hidden_size=64, decoder_hidden_size=64,
             encoder_num_heads=4, decoder_num_heads=4, encoder_depth=2, decoder_depth=2,
             learned_encoder_patch_pe=False, learned_encoder_latent_query_embed=True,
             learned_decoder_latent_pe=False, learned_decoder_patch_query_embed=False,
             use_encoder_patch_token_type_embed=False,
             use_encoder_latent_query_token_type_embed=False,
             use_decoder_latent_token_type_embed=False,
             use_decoder_patch_query_token_type_embed=True, encoder_query_gaussian_init=True,
             latent_pe_scale_factor=10000, query_init_std=0.02)
VQ = dict(name="vq", args=dict(codebook_size=64, commitment_loss_weight=0.25,
                               codebook_loss_weight=1.0, entropy_loss_weight=0.0,
                               entropy_loss_temperature=0.01, l2_normalized=True,
                               stochastic=True, stochastic_temperature=0.03))
PRIOR = dict(name="gptc-XXS", use_mix_ss=True, mix_ss_max_ratio=0.5, mix_ss_peak_steps_ratio=0.3,
             n_rounds=2, avg_loss_over_rounds=True, no_grad_before_last_round=False,
             no_dropout=False, latent_ce_temperature=1.0, args=dict(l2_normalized=True))
BUFFERS = ("encoder_patch_pe", "decoder_latent_pe", "decoder_patch_query_embed")


def clips() -> np.ndarray:
  """[2, 8, 32, 32, 3] in [0, 1]: a 32x32 window panning 4 px per frame across each photo."""
  pics = photos(64)
  return np.stack([np.stack([p[8 + 2 * t:8 + 2 * t + SIZE, 4 * t:4 * t + SIZE]
                             for t in range(FRAMES)]) for p in pics]).astype(np.float32)


def seeded_model(torch, cls, kwargs, seeded):
  model = cls(**kwargs)
  shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
  weights = seeded.seeded_state_dict({k: s for k, s in shapes.items() if k not in BUFFERS}, SEED)
  missing, unexpected = model.load_state_dict(
      {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
  assert sorted(missing) == sorted(BUFFERS) and not unexpected, (missing, unexpected)
  return model.eval(), shapes


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  import torch
  torch.manual_seed(SEED)
  cls = import_official(args.official_repo)
  seeded = load_seeded_module()
  video = clips()
  x = torch.from_numpy(video).permute(0, 4, 1, 2, 3).contiguous()  # NTHWC -> NCTHW
  to_nthwc = lambda t: t.permute(0, 2, 3, 4, 1).detach().numpy()
  out = {"clips": video}

  vq_kwargs = dict(SMALL, bottleneck=dict(name="bottleneck", args=dict(
      bottleneck_dim=8, norm="none", regularizer=VQ)), prior_model=PRIOR)
  vq, vq_shapes = seeded_model(torch, cls, json.loads(json.dumps(vq_kwargs)), seeded)
  vq.set_vq_eval_deterministic(True)
  # GPT-C passes dropout_p=attn_pdrop to scaled_dot_product_attention whatever the mode, so
  # the official prior drops attention weights even in eval(); zero it for a deterministic
  # reference (the zoo's prior has no attention dropout, models/video/gptc.py).
  for module in vq.prior_model.modules():
    if hasattr(module, "p_attn_drop"):
      module.p_attn_drop = 0.0
  out.update({f"buffer_{k}": v.numpy() for k, v in vq.state_dict().items() if k in BUFFERS})
  with torch.no_grad():
    enc = vq.encode(x)
    out["vq_ids"] = enc["bottleneck_rep"].numpy().astype(np.int32)
    out["vq_recon"] = to_nthwc(vq.decode(enc["encoded"]))
    codes = enc["regularized_z"]
    logits, _ = vq.calculate_logits_and_ar_pred_cont(vq.prior_model.ar_predict(codes))
    out["vq_prior_logits"] = logits.numpy()
    vq.x_embedder.strict_vid_size = False  # as eval/rfvd_evaluator.py sets it
    short = vq.encode_eval(x[:, :, :4])
    out["vq_ids_4frames"] = short["bottleneck_rep"].numpy().astype(np.int32)
    out["vq_recon_4frames"] = to_nthwc(vq.decode_eval(short["encoded"], short["num_x_tokens"]))

  kl_kwargs = dict(SMALL, bottleneck=dict(name="bottleneck", args=dict(
      bottleneck_dim=8, norm="none",
      # LARPTokenizer reads codebook_size whatever the regularizer; SKL ignores it.
      regularizer=dict(name="skl", args=dict(codebook_size=64)))),
      prior_model=dict(name="none"))
  kl, kl_shapes = seeded_model(torch, cls, json.loads(json.dumps(kl_kwargs)), seeded)
  with torch.no_grad():
    z = kl.bottleneck.project_in(kl.encoder(
        kl.x_embedder(x) + kl.get_encoder_patch_pe(),
        kl.get_encoder_latent_query_embed().repeat(x.shape[0], 1, 1)))
    mean = z[..., ::2]  # DiagonalGaussianDistribution's mode
    out["kl_mean"] = mean.numpy()
    out["kl_recon"] = to_nthwc(kl.decode(kl.bottleneck.project_out(mean)))

  np.savez_compressed(HERE / "larp.npz", **out)
  (HERE / "larp_vq_config.json").write_text(json.dumps(vq_kwargs, indent=1) + "\n")
  (HERE / "larp_golden_shapes.json").write_text(
      json.dumps({"vq": vq_shapes, "kl": kl_shapes}, indent=0) + "\n")
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main()
