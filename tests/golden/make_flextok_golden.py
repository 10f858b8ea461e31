"""Golden outputs of the official FlexTok (apple/ml-flextok) for tests/test_flextok.py.

A tiny FlexTok is written as a Hydra config in the layout of the released checkpoints'
metadata (encoder / decoder `SequentialModuleDictWrapper`s of `_target_` modules, FSQ
regularizer, MinRF noise module and pipeline); the official modules are instantiated from it
with hydra, filled with zoo/convert/seeded.py weights (the sin-cos posembs keep their values),
and saved with FlexTok's own `save_safetensors(..., metadata_dict=config)` to
tests/golden/flextok_tiny.safetensors (our seeded weights, ~0.3 MB). The VAE is bypassed: the
encoder and decoder are fed 4-channel "VAE latents" directly, so the checkpoint holds no
`vae.*` tensors (its `vae` entry only describes a 4-channel SD VAE). Attention runs through the
official SDPA fallback (`use_flex_attention=False` with materialized packed masks) because
FlexAttention needs torch.compile; both compute the same masked softmax.

Run in a venv with the official code's dependencies:
  python3.11 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch==2.13.0 einops numpy \
      hydra-core diffusers safetensors && /tmp/refvenv/bin/pip install --no-deps mup
  git clone https://github.com/apple/ml-flextok /tmp/official/ml-flextok
  /tmp/refvenv/bin/python tests/golden/make_flextok_golden.py --official_repo /tmp/official/ml-flextok
Writes tests/golden/flextok_tiny.safetensors and tests/golden/flextok.npz: latents, FSQ
features / codes / ids, decoder velocities (conditional and null-condition, mixed keep_k), and
4-step Euler samples from fixed noise with CFG and with APG.
"""
import argparse
import copy
import pathlib
import sys
import types

import numpy as np

from golden_common import ROOT, load_seeded_module

DIM, DEPTH, HEAD_DIM, K, C, LATENT, PATCH = 32, 2, 16, 16, 4, 8, 2
GRID = LATENT // PATCH
LEVELS = [8, 8, 8, 5, 5, 5]
PKG = "flextok.model"


def _t(target, **kw):
  return {"_target_": target, **kw}


def _op(name):
  return _t("hydra.utils.get_method", path=f"{PKG}.utils.dict_ops.{name}")


def tiny_config() -> dict:
  encoder = {
      "enc_channels_to_last": _t(f"{PKG}.utils.dict_ops.PerSampleOp", read_key="vae_latents",
                                 write_key="vae_latents_bhwc",
                                 per_sample_op=_op("channels_first_to_last")),
      "enc_patch_emb": _t(f"{PKG}.preprocessors.patching.PatchEmbedder",
                          input_tensor_list_read_key="vae_latents_bhwc",
                          patches_list_write_key="enc_patches", n_patches_write_key="enc_n_patches",
                          channels_in=C, dim=DIM, patch_sizes=[PATCH, PATCH],
                          flatten_patches=False),
      "enc_posemb_module": _t(f"{PKG}.utils.posembs.PositionalEmbeddingAdder",
                              read_key="enc_patches", write_key="enc_patches", dim=DIM,
                              max_sizes=[GRID, GRID], posemb_type="sincos",
                              posemb_scaling="absolute"),
      "enc_register_module": _t(f"{PKG}.preprocessors.registers.Registers1D",
                                input_tensor_list_read_key="enc_patches",
                                register_sizes_read_write_key="register_sizes",
                                registers_write_key="enc_registers", dim=DIM, n_min=K, n_max=K,
                                size_sampling_mode="uniform", ordering_mode="nested"),
      "enc_seq_packer": _t(f"{PKG}.preprocessors.flex_seq_packing.BlockWiseSequencePacker",
                           input_list_read_keys=["enc_patches", "enc_registers"],
                           packed_seq_write_key="enc_packed_seq",
                           block_mask_write_key="enc_block_mask",
                           inner_packed_shapes_write_key="enc_ps_inner",
                           outer_packed_shapes_write_key="enc_ps_outer",
                           mask_mode="causal_last", pad_to_multiple=128),
      "enc_transformer": _t(f"{PKG}.trunks.transformers.FlexTransformer",
                            input_seq_read_key="enc_packed_seq",
                            output_seq_write_key="enc_packed_seq", dim=DIM, depth=DEPTH,
                            head_dim=HEAD_DIM, block_mask_read_key="enc_block_mask"),
      "enc_unpacker": _t(f"{PKG}.postprocessors.seq_unpacking.SequenceUnpacker",
                         packed_seq_read_key="enc_packed_seq",
                         inner_seq_write_keys=["enc_patches", "enc_registers"],
                         inner_packed_shapes_read_key="enc_ps_inner",
                         outer_packed_shapes_read_key="enc_ps_outer"),
      "enc_to_latents": _t(f"{PKG}.postprocessors.heads.LinearHead", read_key="enc_registers",
                           write_key="enc_registers", dim=DIM, dim_out=len(LEVELS),
                           use_mup_readout=False, weight_init_style="zero"),
  }
  decoder = {
      "dec_from_latents": _t(f"{PKG}.preprocessors.linear.LinearLayer", read_key="quants",
                             write_key="dec_registers", dim_in=len(LEVELS), dim=DIM),
      "dec_nested_dropout": _t(f"{PKG}.preprocessors.token_dropout.MaskedNestedDropout",
                               read_write_key="dec_registers", dim=DIM,
                               size_sampling_mode="pow2"),
      "dec_nullcond": _t(f"{PKG}.preprocessors.nullcond.LearnedNullCond",
                         read_write_key="dec_registers", dim=DIM, dropout_prob=0.1),
      "dec_noise_channels_to_last": _t(f"{PKG}.utils.dict_ops.PerSampleOp",
                                       read_key="vae_latents_noised",
                                       write_key="vae_latents_noised_bhwc",
                                       per_sample_op=_op("channels_first_to_last")),
      "dec_patch_emb": _t(f"{PKG}.preprocessors.patching.PatchEmbedder",
                          input_tensor_list_read_key="vae_latents_noised_bhwc",
                          patches_list_write_key="dec_patches", n_patches_write_key="dec_n_patches",
                          channels_in=C, dim=DIM, patch_sizes=[PATCH, PATCH],
                          flatten_patches=False),
      "dec_posemb_module": _t(f"{PKG}.utils.posembs.PositionalEmbeddingAdder",
                              read_key="dec_patches", write_key="dec_patches", dim=DIM,
                              max_sizes=[GRID, GRID], posemb_type="sincos",
                              posemb_scaling="absolute"),
      "dec_time_embedder": _t(f"{PKG}.preprocessors.time_embedding.TimestepEmbedder",
                              timesteps_read_key="timesteps", time_embedding_write_key="dec_temb",
                              dim=DIM, max_timestep=1.0),
      "dec_seq_packer": _t(f"{PKG}.preprocessors.flex_seq_packing.BlockWiseSequencePacker",
                           input_list_read_keys=["dec_patches", "dec_registers"],
                           packed_seq_write_key="dec_packed_seq",
                           block_mask_write_key="dec_block_mask",
                           inner_packed_shapes_write_key="dec_ps_inner",
                           outer_packed_shapes_write_key="dec_ps_outer", mask_mode="full",
                           pad_to_multiple=128, emb_packing_fn_write_key="dec_emb_packing_fn",
                           per_subseq_embs=True),
      "dec_transformer": _t(f"{PKG}.trunks.transformers.FlexTransformer",
                            input_seq_read_key="dec_packed_seq",
                            output_seq_write_key="dec_packed_seq", dim=DIM, depth=DEPTH,
                            head_dim=HEAD_DIM, block_mask_read_key="dec_block_mask",
                            adaLN_emb_read_key="dec_temb",
                            adaLN_packing_fn_read_key="dec_emb_packing_fn", adaLN_expansion=2),
      "dec_unpacker": _t(f"{PKG}.postprocessors.seq_unpacking.SequenceUnpacker",
                         packed_seq_read_key="dec_packed_seq",
                         inner_seq_write_keys=["dec_patches", "dec_registers"],
                         inner_packed_shapes_read_key="dec_ps_inner",
                         outer_packed_shapes_read_key="dec_ps_outer"),
      "dec_to_patches": _t(f"{PKG}.postprocessors.heads.ToPatchesLinearHead",
                           read_key="dec_patches", write_key="vae_latents_reconst_bhwc", dim=DIM,
                           channels_out=C, patch_sizes=[PATCH, PATCH], use_mup_readout=False,
                           weight_init_style="zero", adaLN_emb_read_key="dec_temb"),
      "dec_channels_to_first": _t(f"{PKG}.utils.dict_ops.PerSampleOp",
                                  read_key="vae_latents_reconst_bhwc",
                                  write_key="vae_latents_reconst",
                                  per_sample_op=_op("channels_last_to_first")),
  }
  wrapper = "flextok.model.utils.wrappers.SequentialModuleDictWrapper"
  return {
      "_target_": "flextok.flextok_wrapper.FlexTok",
      "vae": _t("flextok.vae_wrapper.StableDiffusionVAE", images_read_key="rgb",
                vae_latents_read_key="vae_latents_reconst", vae_latents_write_key="vae_latents",
                images_reconst_write_key="rgb_reconst", latent_channels=C, frozen=True),
      "encoder": _t(wrapper, module_dict=encoder),
      "decoder": _t(wrapper, module_dict=decoder),
      "regularizer": _t("flextok.regularizers.quantize_fsq.FSQ", latents_read_key="enc_registers",
                        quants_write_key="quants", tokens_write_key="tokens", levels=LEVELS,
                        drop_quant_p=0.0),
      "flow_matching_noise_module": _t("flextok.flow_matching.noise_modules.MinRFNoiseModule",
                                       clean_images_read_key="vae_latents",
                                       noised_images_write_key="vae_latents_noised",
                                       timesteps_write_key="timesteps",
                                       sigmas_write_key="sigmas"),
      "pipeline": _t("flextok.flow_matching.pipelines.MinRFPipeline", _partial_=True,
                     target_sizes_read_key="vae_latent_sizes", latents_read_key="vae_latents",
                     timesteps_read_key="timesteps", noised_images_read_key="vae_latents_noised",
                     reconst_write_key="vae_latents_reconst", out_channels=C),
  }


def stub_torchvision():
  """flextok.utils.misc imports torchvision for helpers these modules never call."""
  tv = types.ModuleType("torchvision")
  tr = types.ModuleType("torchvision.transforms")
  tr.functional = types.ModuleType("torchvision.transforms.functional")
  tv.transforms = tr
  sys.modules.update({"torchvision": tv, "torchvision.transforms": tr,
                      "torchvision.transforms.functional": tr.functional})


def use_sdpa(module):
  for m in module.modules():
    if hasattr(m, "use_flex_attention"):
      m.use_flex_attention = False
    if hasattr(m, "return_materialized_mask"):
      m.return_materialized_mask = True


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  stub_torchvision()
  sys.path.insert(0, str(args.official_repo))
  import torch
  from hydra.utils import instantiate
  from flextok.utils.checkpoint import save_safetensors, load_safetensors

  torch.manual_seed(0)
  config = tiny_config()
  parts = {k: instantiate(copy.deepcopy(config[k]))
           for k in ("encoder", "decoder", "regularizer")}
  state = {f"{p}.{k}": v for p in ("encoder", "decoder") for k, v in parts[p].state_dict().items()}
  seeded = load_seeded_module()
  for name, value in state.items():
    if not name.endswith("posembs"):
      state[name] = torch.from_numpy(seeded.seeded_tensor(name, tuple(value.shape), seed=0))
  out_dir = ROOT / "tests" / "golden"
  ckpt = out_dir / "flextok_tiny.safetensors"
  save_safetensors(dict(state), str(ckpt), metadata_dict=config)

  # Reload exactly as FlexTok does (tensors + ast.literal_eval'd header) and fill the modules.
  tensors, metadata = load_safetensors(str(ckpt))
  assert metadata["encoder"] == config["encoder"]
  for p in ("encoder", "decoder"):
    sub = {k[len(p) + 1:]: v for k, v in tensors.items() if k.startswith(p + ".")}
    parts[p].load_state_dict(sub, strict=True)
    parts[p].eval()
    use_sdpa(parts[p])
  encoder, decoder, fsq = parts["encoder"], parts["decoder"], parts["regularizer"].eval()
  pipeline = instantiate(copy.deepcopy(config["pipeline"]))(model=decoder)

  rng = np.random.default_rng(0)
  b = 2
  latents = rng.standard_normal((b, C, LATENT, LATENT)).astype(np.float32)
  with torch.no_grad():
    d = {"vae_latents": list(torch.from_numpy(latents).split(1))}
    d = encoder(d)
    features = torch.cat(d["enc_registers"]).numpy()
    d = fsq(d)
    quant = torch.cat(d["quants"]).numpy()
    ids = torch.cat(d["tokens"]).numpy()

    noised = rng.standard_normal((b, C, LATENT, LATENT)).astype(np.float32)
    t = np.asarray([0.3, 0.8], np.float32)
    keep_k = [5, K]

    def velocity(uncond):
      dd = {"quants": [torch.from_numpy(q[None]) for q in quant], "eval_keep_k": keep_k,
            "vae_latents_noised": list(torch.from_numpy(noised).split(1)),
            "timesteps": torch.from_numpy(t)}
      if uncond:
        dd["eval_dropout_mask"] = [True] * b
      return torch.cat(decoder(dd)["vae_latents_reconst"]).numpy()

    v_cond, v_uncond = velocity(False), velocity(True)

    noise = rng.standard_normal((b, C, LATENT, LATENT)).astype(np.float32)
    sample_keep_k = [3, K]
    pipeline.noise_read_key = "golden_noise"
    samples = {}
    for name, scale, apg in (("cfg", 3.0, False), ("apg", 3.0, True), ("plain", 1.0, False)):
      dd = {"quants": [torch.from_numpy(q[None]) for q in quant], "eval_keep_k": sample_keep_k,
            "golden_noise": list(torch.from_numpy(noise).split(1))}
      dd = pipeline(dd, timesteps=4, vae_image_sizes=[(LATENT, LATENT)] * b, verbose=False,
                    guidance_scale=scale, perform_norm_guidance=apg)
      samples[name] = torch.cat(dd["vae_latents_reconst"]).numpy()

  nhwc = lambda a: a.transpose(0, 2, 3, 1)
  out = out_dir / "flextok.npz"
  np.savez(out, latents=nhwc(latents), features=features, quant=quant,
           ids=ids.astype(np.int64), noised=nhwc(noised), t=t, keep_k=np.asarray(keep_k),
           v_cond=nhwc(v_cond), v_uncond=nhwc(v_uncond), noise=nhwc(noise),
           sample_keep_k=np.asarray(sample_keep_k), sample_cfg=nhwc(samples["cfg"]),
           sample_apg=nhwc(samples["apg"]), sample_plain=nhwc(samples["plain"]),
           num_steps=4, guidance_scale=3.0)
  print(f"wrote {ckpt} ({ckpt.stat().st_size} bytes) and {out}")


if __name__ == "__main__":
  main()
