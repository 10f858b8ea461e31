"""FlexTok against the official implementation (tests/golden/make_flextok_golden.py), the
checkpoint header reader, one compiled decode for every length, training forward, inputs."""
import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.image.flextok import FlexTok, sincos_posemb
from zoo.convert import common
from zoo.convert import flextok as convert
from tests.compilations import count_compilations

GOLDEN = pathlib.Path(__file__).parent / "golden"
CKPT = GOLDEN / "flextok_tiny.safetensors"


@pytest.fixture(scope="module")
def golden():
  return np.load(GOLDEN / "flextok.npz")


@pytest.fixture(scope="module")
def official():
  """The tiny official model, built from its own header (no VAE tensors: latent space)."""
  return convert.from_checkpoint(CKPT, with_vae=False)


@pytest.fixture(scope="module")
def tiny():
  """flextok_tiny with every parameter randomised (the zero inits would block gradients)."""
  model = nnx.eval_shape(lambda: zoo.create("flextok_tiny"))  # no eager init: fast
  rng = np.random.default_rng(1)
  for var in common.model_params(model).values():
    var.set_value(jnp.asarray(0.1 * rng.standard_normal(var.shape), jnp.float32))
  return model


# -- parity with the official code -----------------------------------------------------------
def test_encoder_ids_match_official(official, golden):
  feat = official.encoder(jnp.asarray(golden["latents"]))
  np.testing.assert_allclose(np.asarray(feat), golden["features"], atol=2e-5)
  quant, ids = official.encode_latents(jnp.asarray(golden["latents"]))
  np.testing.assert_array_equal(np.asarray(ids), golden["ids"])
  np.testing.assert_allclose(np.asarray(quant), golden["quant"], atol=1e-6)
  assert ids.dtype == jnp.int32 and ids.shape == (2, 16)


@pytest.mark.parametrize("uncond", [False, True])
def test_decoder_velocity_matches_official(official, golden, uncond):
  v = official.decoder_velocity(jnp.asarray(golden["noised"]), jnp.asarray(golden["t"]),
                                jnp.asarray(golden["quant"]), jnp.asarray(golden["keep_k"]),
                                jnp.full((2,), uncond))
  want = golden["v_uncond" if uncond else "v_cond"]
  np.testing.assert_allclose(np.asarray(v), want, atol=2e-5)


@pytest.mark.parametrize("name,scale,apg", [("cfg", 3.0, False), ("apg", 3.0, True),
                                            ("plain", 1.0, False)])
def test_sampling_matches_official(official, golden, name, scale, apg):
  x = official.sample_latents(jnp.asarray(golden["quant"]), jnp.asarray(golden["sample_keep_k"]),
                              jnp.asarray(golden["noise"]), num_steps=int(golden["num_steps"]),
                              guidance_scale=scale, do_cfg=scale != 1.0, use_apg=apg)
  np.testing.assert_allclose(np.asarray(x), golden[f"sample_{name}"], atol=2e-5)


def test_masked_registers_do_not_matter(official, golden):
  """Registers past keep_k are replaced by the mask token: their codes cannot change v."""
  q = jnp.asarray(golden["quant"])
  args = (jnp.asarray(golden["noised"]), jnp.asarray(golden["t"]))
  keep = jnp.asarray([3, 3])
  v1 = official.decoder_velocity(*args, q, keep)
  v2 = official.decoder_velocity(*args, q.at[:, 3:].set(-q[:, 3:]), keep)
  np.testing.assert_allclose(np.asarray(v1), np.asarray(v2), atol=1e-6)
  v3 = official.decoder_velocity(*args, q, jnp.asarray([4, 4]))
  assert np.abs(np.asarray(v3) - np.asarray(v1)).max() > 1e-3


def test_posemb_formula():
  emb = sincos_posemb(3, 3, 8)
  omega = 1.0 / 10000 ** (np.arange(2) / 2)
  r, c = 2, 1  # the first half of the channels encodes the row for square grids
  want = np.concatenate([np.sin(r * omega), np.cos(r * omega), np.sin(c * omega),
                         np.cos(c * omega)])
  np.testing.assert_allclose(emb[r, c], want, atol=1e-6)


# -- the checkpoint header -------------------------------------------------------------------
def test_config_from_header():
  meta = convert.read_metadata(CKPT)
  assert meta["_target_"] == "flextok.flextok_wrapper.FlexTok"
  cfg = convert.config_from_metadata(meta, with_vae=False)
  assert (cfg.enc_dim, cfg.enc_depth, cfg.dec_dim, cfg.dec_depth, cfg.head_dim) == (32, 2, 32, 2, 16)
  assert (cfg.num_registers, cfg.latent_channels, cfg.patch_size, cfg.grid) == (16, 4, 2, 4)
  assert cfg.fsq_levels == (8, 8, 8, 5, 5, 5) and cfg.image_size == 64 and cfg.downsample == 8
  assert (cfg.enc_mask_mode, cfg.dec_mask_mode) == ("causal_last", "full")
  assert cfg.dec_register_ops == ("proj", "nested_dropout", "nullcond")
  assert (cfg.nullcond, cfg.cfg_dropout_p, cfg.keep_k_mode) == ("learned", 0.1, "pow2")
  assert cfg.adaln_expansion == 2 and cfg.dec_head_adaln and cfg.max_timestep == 1.0


def _meta():
  return convert.read_metadata(CKPT)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["encoder"]["module_dict"].__setitem__(
        "enc_extra", {"_target_": "flextok.model.layers.Foo"}), "enc_extra.*Foo"),
    (lambda m: m["decoder"]["module_dict"]["dec_to_patches"].__setitem__(
        "use_mup_readout", True), "dec_to_patches.use_mup_readout"),
    (lambda m: m["encoder"]["module_dict"]["enc_transformer"].__setitem__(
        "qkv_bias", True), "enc_transformer.qkv_bias"),
    (lambda m: m["encoder"]["module_dict"]["enc_posemb_module"].__setitem__(
        "posemb_type", "learnable_sum"), "enc_posemb_module.posemb_type"),
    (lambda m: m["encoder"]["module_dict"].pop("enc_register_module"), "enc_register_module"),
    (lambda m: m.pop("regularizer"), "regularizer"),
    (lambda m: m["decoder"]["module_dict"]["dec_nullcond"].__setitem__(
        "replace_with_single_token", True), "replace_with_single_token"),
])
def test_unmappable_metadata_names_the_field(edit, match):
  meta = _meta()
  edit(meta)
  with pytest.raises(convert.MetadataError, match=match):
    convert.config_from_metadata(meta, with_vae=False)


def test_renamed_modules_follow_the_header(tmp_path, golden):
  """Module names are free in the Hydra config: tensors are found through the header."""
  from safetensors.numpy import save_file
  meta = _meta()
  tensors = convert.read_checkpoint(CKPT)
  meta["encoder"]["module_dict"] = {("renamed_" + k if k == "enc_transformer" else k): v
                                    for k, v in meta["encoder"]["module_dict"].items()}
  renamed = {k.replace(".enc_transformer.", ".renamed_enc_transformer."): v
             for k, v in tensors.items()}
  path = tmp_path / "model.safetensors"
  save_file(renamed, str(path), metadata={k: str(v) for k, v in meta.items()})
  model = convert.from_checkpoint(tmp_path, with_vae=False)
  _, ids = model.encode_latents(jnp.asarray(golden["latents"]))
  np.testing.assert_array_equal(np.asarray(ids), golden["ids"])


def test_converter_lists_missing_unused_and_shapes(official):
  sd = dict(convert.read_checkpoint(CKPT))
  name = "decoder.module_dict.dec_transformer.blocks.1.attn.wq.weight"
  sd.pop(name)
  sd["decoder.module_dict.dec_transformer.blocks.9.attn.wq.weight"] = np.zeros((32, 32))
  sd["encoder.module_dict.enc_to_latents.proj.bias"] = np.zeros((7,), np.float32)
  with pytest.raises(common.CheckpointMismatchError) as e:
    convert.load_state_dict(official, sd)
  text = str(e.value)
  assert name in text and "blocks.9" in text and "enc_to_latents.proj.bias" in text
  sd = dict(convert.read_checkpoint(CKPT))
  sd["encoder.module_dict.enc_posemb_module.posembs"] = sd[
      "encoder.module_dict.enc_posemb_module.posembs"] + 1.0
  with pytest.raises(common.CheckpointMismatchError, match="sin-cos"):
    convert.load_state_dict(official, sd)


def test_from_pretrained_with_another_models_header_says_so():
  with pytest.raises(common.CheckpointMismatchError, match="enc_dim.*from_checkpoint|from_checkpoint"):
    zoo.from_pretrained("flextok_d12_d12_in1k", checkpoint=str(CKPT))


def test_from_pretrained_builds_the_architecture_from_the_header(official):
  """An unreleased name takes the header's architecture whole (here the golden model's; its
  header names a VAE whose tensors the golden file leaves out, hence vae=None)."""
  with pytest.raises(common.CheckpointMismatchError, match="missing from the checkpoint"):
    zoo.from_pretrained("flextok_tiny", checkpoint=str(CKPT))
  loaded = zoo.from_pretrained("flextok_tiny", checkpoint=str(CKPT), vae=None)
  assert loaded.config.enc_depth == official.config.enc_depth
  assert loaded.config.num_registers == official.config.num_registers == 16
  for (path, a), (_, b) in zip(common.model_params(loaded).items(),
                               common.model_params(official).items()):
    np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]), err_msg=str(path))


def test_no_metadata_is_a_clear_error(tmp_path):
  from safetensors.numpy import save_file
  save_file({"x": np.zeros(2, np.float32)}, str(tmp_path / "model.safetensors"))
  with pytest.raises(convert.MetadataError, match="__metadata__"):
    convert.config_from_checkpoint(tmp_path)
  with pytest.raises(FileNotFoundError, match="model.safetensors"):
    convert.read_checkpoint(tmp_path / "missing")


def test_released_parameter_counts():
  """d18-d18 + the c16 VAE: 948.85M parameters (+0.59M for the two sin-cos posembs FlexTok
  stores as parameters) against GPSToken's table (949.7M for FlexTok); d18-d28 is ~2.5B."""
  count = lambda m: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(m, nnx.Param)))
  # The VAE is counted once; the trunks without it (a latent-space FlexTok).
  from models.image.kl_vae import KLVAE
  vae_cfg = zoo.registry.get("flextok_d18_d28_in1k").config.vae
  vae = count(nnx.eval_shape(lambda: KLVAE(vae_cfg, rngs=nnx.Rngs(0))))
  m18 = nnx.eval_shape(lambda: zoo.create("flextok_d18_d18_in1k", vae=None))
  m28 = nnx.eval_shape(lambda: zoo.create("flextok_d18_d28_in1k", vae=None))
  posembs = 2 * 256 * 1152
  assert 83e6 < vae < 85e6
  assert abs(vae + count(m18) + posembs - 949.7e6) / 949.7e6 < 1e-3
  assert 2.45e9 < vae + count(m28) < 2.6e9
  assert m28.decoder.blocks[0].mlp.fc1.kernel.shape == (1792, 4778)  # int(2/3 * 4 * 1792)


# -- the public API --------------------------------------------------------------------------
def test_one_compilation_for_every_length(tiny):
  with count_compilations() as compiles:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, tiny.config.codebook_size, (2, 32)).astype(np.int32)
    first = tiny.decode(ids[:, :4], num_steps=2)
    before = len(compiles)
    outs = [tiny.decode(ids[:, :k], num_steps=2) for k in (1, 7, 32)]
    outs.append(tiny.decode(ids, num_tokens=np.asarray([4, 32], np.int32), num_steps=2))
    jax.block_until_ready(outs)
    assert before >= 1 and len(compiles) == before, "decode recompiled for a new length"
  assert first.shape == (2, 64, 64, 3) and float(first.min()) >= 0 and float(first.max()) <= 1
  # per-image lengths: image 0 with 4 tokens equals decoding its first 4 tokens alone.
  np.testing.assert_allclose(np.asarray(outs[-1][0]), np.asarray(first[0]), atol=1e-5)
  np.testing.assert_allclose(np.asarray(outs[-1][1]), np.asarray(outs[2][1]), atol=1e-5)
  assert np.abs(np.asarray(outs[0]) - np.asarray(outs[2])).max() > 1e-4


def test_decode_guidance_paths_and_noise(tiny):
  ids = tiny.encode(jnp.full((1, 64, 64, 3), 0.5))
  assert ids.shape == (1, 32) and ids.dtype == jnp.int32
  noise = jax.random.normal(jax.random.key(3), (1, 64, 64, 3))
  a = tiny.decode(ids, num_steps=2, guidance_scale=3.0, use_apg=True, noise=noise)
  b = tiny.decode(ids, num_steps=2, guidance_scale=3.0, use_apg=False, noise=noise)
  c = tiny.decode(ids, num_steps=2, rngs=nnx.Rngs(sample=5))
  assert a.shape == b.shape == c.shape == (1, 64, 64, 3)
  assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-5


@pytest.mark.parametrize("call,err,match", [
    (lambda m: m.decode(np.zeros((2, 4), np.float32)), TypeError, "integers"),
    (lambda m: m.decode(np.zeros((2, 33), np.int32)), ValueError, "between 1 and 32"),
    (lambda m: m.decode(np.full((2, 4), 1000, np.int32)), ValueError, r"\[0, 1000\)"),
    (lambda m: m.decode(np.zeros((4,), np.int32)), ValueError, r"\[B, k\]"),
    (lambda m: m.decode(np.zeros((2, 4), np.int32), num_tokens=np.ones(2, np.int32)),
     ValueError, "padded"),
    (lambda m: m.decode(np.zeros((2, 32), np.int32), num_tokens=np.asarray([0, 3])),
     ValueError, "num_tokens must be in"),
    (lambda m: m.decode(np.zeros((2, 32), np.int32), num_tokens=np.ones(3, np.int32)),
     ValueError, "num_tokens must be"),
    (lambda m: m.decode(np.zeros((1, 4), np.int32), noise=jnp.zeros((1, 8, 8, 3))),
     ValueError, "noise must be"),
    (lambda m: m.decode(np.zeros((1, 4), np.int32), num_steps=0), ValueError, "num_steps"),
    (lambda m: m.encode(jnp.zeros((1, 32, 32, 3))), ValueError, "64x64"),
    (lambda m: m.encode(jnp.full((1, 64, 64, 3), 2.0)), ValueError, r"\[0, 1\]"),
    (lambda m: m(jnp.zeros((1, 64, 64, 3)), train=True), ValueError, "rngs"),
])
def test_bad_inputs(tiny, call, err, match):
  with pytest.raises(err, match=match):
    call(tiny)


def test_latent_only_model_refuses_pixels(official):
  with pytest.raises(ValueError, match="no VAE"):
    official.encode(jnp.zeros((1, 64, 64, 3)))


def test_training_forward_and_gradients(tiny):
  images = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3))
  graphdef, params, rest = nnx.split(tiny, nnx.Param, ...)

  def loss_fn(params):
    out = nnx.merge(graphdef, params, rest)(images, train=True, rngs=nnx.Rngs(sample=1))
    return out["losses"]["flow"], out

  (loss, out), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
  assert np.isfinite(float(loss)) and set(out["stats"]) >= {"keep_k_mean", "sigma_mean"}
  assert float(out["stats"]["null_cond_frac"]) < 1  # some image keeps its registers
  norm = lambda t: float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(t)))
  assert norm(grads["encoder"]["blocks"]) > 0 and norm(grads["encoder"]["registers"]) > 0
  assert norm(grads["decoder"]["blocks"]) > 0 and norm(grads["decoder"]["dropout_mask_token"]) > 0
  recon = nnx.jit(lambda m, x: m(x, train=False)["recon"])(tiny, images)
  assert recon.shape == images.shape and np.all(np.isfinite(np.asarray(recon)))


def test_recipe():
  from zoo.configs import flextok as configs
  c = configs.get_config("tiny")
  assert c.model == "flextok_tiny" and c.loss.pixel_l2 == 0.0 and c.loss.flow == 1.0
  assert configs.get_config("flextok_d18_d28_in1k").frozen == ("vae",)
  with pytest.raises(ValueError, match="unknown FlexTok config"):
    configs.get_config("nope")


def test_with_a_vae_end_to_end_and_converter_delegation():
  """FlexTok on a tiny KL VAE: images -> VAE latents -> ids -> images, and a checkpoint in
  the official layout (VAE under `vae.vae.`) loads through zoo.convert.kl_vae."""
  from zoo.convert.seeded import seeded_state_dict
  vae_cfg = zoo.registry.get("kl_vae_tiny").config
  cfg = dataclasses.replace(
      zoo.registry.get("flextok_tiny").config, image_size=32, vae=vae_cfg, latent_channels=4,
      downsample=2, patch_size=2, num_registers=8, enc_dim=32, dec_dim=32, head_dim=16)
  build = lambda: FlexTok(cfg, rngs=nnx.Rngs(0))
  abstract = nnx.eval_shape(build)
  shapes = common.expected_torch_shapes(abstract, convert.table(cfg))
  assert any(k.startswith("vae.vae.encoder.") for k in shapes)
  sd = seeded_state_dict(shapes, seed=3)
  for name, dim in zip(convert.posemb_names(cfg), (cfg.enc_dim, cfg.dec_dim)):
    sd[name] = sincos_posemb(cfg.grid, cfg.grid, dim).transpose(2, 0, 1)[None]
  convert.load_state_dict(abstract, sd, model_name="tiny_vae_flextok")
  images = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  ids = abstract.encode(images)
  assert ids.shape == (2, 8)
  out = abstract.decode(ids[:, :3], num_steps=2)
  assert out.shape == (2, 32, 32, 3) and np.all(np.isfinite(np.asarray(out)))
  with pytest.raises(ValueError, match="VAE gives"):
    dataclasses.replace(cfg, latent_channels=16)


def test_repo_dir_config_json(tmp_path):
  """A FlexTokFromHub repo dir: config.json holds the same Hydra config as the header."""
  from safetensors.numpy import save_file
  meta = _meta()
  save_file(dict(convert.read_checkpoint(CKPT)), str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in meta.items()}))
  cfg = convert.config_from_checkpoint(tmp_path, with_vae=False)
  assert cfg == convert.config_from_metadata(meta, with_vae=False)
  with pytest.raises(common.CheckpointMismatchError, match="enc_dim"):
    zoo.from_pretrained("flextok_d12_d12_in1k", checkpoint=str(tmp_path))
