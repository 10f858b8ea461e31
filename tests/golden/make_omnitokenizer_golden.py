"""Golden outputs of the official OmniTokenizer (FoundationVision/OmniTokenizer) on seeded
weights.

The official VQGAN (omnitokenizer.py, modules/attention.py, codebook.py, vae.py) is imported
from a local checkout (never copied) through omnitokenizer_official.py, on the paper's
attention path (no SDPA). Three small tokenizers in the official key layout, filled from
`zoo/convert/seeded.py` (`omnitokenizer_state_dict`), with the released block strings
("ttww" encoder, "tttt" decoder, window attention, causal temporal attention and PEG):
  * vq_rope: VQ, 2-D RoPE spatial positions (the joint-stage checkpoints);
  * vq_rel:  VQ, continuous relative-position bias (the image-stage default);
  * vae_rope: the VAE (diagonal Gaussian) variant.
Width 64, 2 heads of 32, 4 temporal blocks, patches of 4x4 pixels and 4 frames,
window 4, 64 codes of dim 8, on 32x32 inputs: images (T = 1) and 17-frame clips that pan
across scikit-image's astronaut and coffee.

  /tmp/venv/bin/pip install timm --no-deps beartype imageio einops
  git clone https://github.com/FoundationVision/OmniTokenizer /tmp/omni_official
  /tmp/venv/bin/python tests/golden/make_omnitokenizer_golden.py --official_repo /tmp/omni_official

Writes, next to this file:
  omnitokenizer.npz                 images, clips; per model: image / video ids (VQ) or
                                    posterior means (VAE), reconstructions (official range
                                    [-0.5, 0.5] plus 0.5, unclipped), the window attention's
                                    relative_position_index buffer
  omnitokenizer_golden.json         per model: the argparse hyper-parameters the VQGAN was
                                    built from, and its state dict's {key: shape}
"""
import argparse
import json
import pathlib

import numpy as np

from golden_common import load_seeded_module, photos
from omnitokenizer_official import import_official

HERE = pathlib.Path(__file__).resolve().parent
SEED = 0
FRAMES, SIZE = 17, 32
# The released recipe's flags (scripts/recons/train.sh), at a CPU size.
ARGS = dict(
    embedding_dim=64, n_codes=64, codebook_dim=8, resolution=SIZE, image_channels=3,
    patch_size=4, temporal_patch_size=4, patch_embed="linear", norm_type="batch",
    enc_block="ttww", dec_block="tttt", twod_window_size=4, spatial_depth=4, temporal_depth=4,
    causal_in_temporal_transformer=True, causal_in_peg=True, dim_head=32, heads=2,
    attn_dropout=0.0, ff_dropout=0.0, ff_mult=4.0, sequence_length=FRAMES,
    defer_temporal_pool=False, defer_spatial_pool=False, gen_upscale=None,
    initialize_vit=True, use_external_codebook=False, l2_code=True, no_random_restart=True,
    restart_thres=1.0, commitment_weight=1.0, apply_allframes=False, gan_feat_weight=4.0,
    disc_channels=64, disc_layers=3, disc_loss_type="hinge", image_gan_weight=0.01,
    video_gan_weight=1.0, perceptual_weight=4.0, recon_loss_type="l1", l1_weight=4.0,
    grad_accumulates=1, grad_clip_val=1.0, logitslaplace_weight=0.0, apply_noise=True,
    apply_blur=True, use_vae=False, kl_weight=1e-6, spatial_pos="rope")
MODELS = {"vq_rope": {}, "vq_rel": {"spatial_pos": "rel"}, "vae_rope": {"use_vae": True}}


def clips() -> np.ndarray:
  """[2, 17, 32, 32, 3] in [0, 1]: a 32x32 window panning 2 px per frame across each photo."""
  pics = photos(80)
  return np.stack([np.stack([p[4 + t:4 + t + SIZE, 2 * t:2 * t + SIZE] for t in range(FRAMES)])
                   for p in pics]).astype(np.float32)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  import torch
  torch.manual_seed(SEED)
  vqgan_cls, gaussian_cls = import_official(args.official_repo)
  seeded = load_seeded_module()
  video = clips()
  images = video[:, 0]
  x_video = torch.from_numpy(video - 0.5).permute(0, 4, 1, 2, 3).contiguous()
  x_image = torch.from_numpy(images - 0.5).permute(0, 3, 1, 2).contiguous()
  to_nthwc = lambda t: t.permute(0, 2, 3, 4, 1).detach().numpy() + 0.5
  to_nhwc = lambda t: t.permute(0, 2, 3, 1).detach().numpy() + 0.5
  out = {"images": images, "clips": video}
  meta = {}
  for name, overrides in MODELS.items():
    hparams = dict(ARGS, **overrides)
    model = vqgan_cls(argparse.Namespace(**hparams)).eval()
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    buffers = {k for k in shapes if k.endswith("relative_position_index")}
    weights = seeded.omnitokenizer_state_dict(
        {k: s for k, s in shapes.items() if k not in buffers}, SEED)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    assert sorted(missing) == sorted(buffers) and not unexpected, (missing, unexpected)
    index = model.state_dict()[sorted(buffers)[0]].numpy()
    out[f"{name}_relative_position_index"] = index
    with torch.no_grad():
      if hparams["use_vae"]:
        for kind, x, is_image, back in (("image", x_image, True, to_nhwc),
                                        ("video", x_video, False, to_nthwc)):
          posterior = gaussian_cls(model.pre_vq_conv(model.encoder(x, is_image)))
          mean = posterior.mode()  # [b, c, t, h, w]
          out[f"{name}_{kind}_mean"] = mean.permute(0, 2, 3, 4, 1).numpy()
          out[f"{name}_{kind}_recon"] = back(model.decoder(model.post_vq_conv(mean), is_image))
      else:
        for kind, x, is_image, back in (("image", x_image, True, to_nhwc),
                                        ("video", x_video, False, to_nthwc)):
          ids = model.encode(x, is_image)
          out[f"{name}_{kind}_ids"] = ids.numpy().astype(np.int32)
          out[f"{name}_{kind}_recon"] = back(model.decode(ids, is_image))
    meta[name] = {"hparams": hparams, "shapes": shapes}
  np.savez_compressed(HERE / "omnitokenizer.npz", **out)
  (HERE / "omnitokenizer_golden.json").write_text(json.dumps(meta, indent=0) + "\n")
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main()
