"""One-D-Piece: tail token drop, flexible-length decoding as one program, released names."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from models.layers.maskgit_cnn import MaskGitCnnConfig
from zoo import registry
from zoo.configs import one_d_piece
from zoo.convert.common import expected_torch_shapes
from zoo.convert.seeded import seeded_state_dict
from tests.compilations import count_compilations

IMAGES = np.random.default_rng(0).uniform(size=(3, 64, 64, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
  return zoo.create("one_d_piece_tiny", seed=1)


def truncated_decode(model, ids):
  """The official decode of a prefix: the decoder run on the k tokens alone, no mask."""
  z = model.quantize.lookup(jnp.asarray(ids))
  return model.decoder(z)


@pytest.mark.parametrize("k", [1, 5, 31, 32])
def test_masked_decode_equals_decoding_the_prefix_alone(model, k):
  ids = model.encode(IMAGES)
  got = model.decode(ids[:, :k], clip=False)
  np.testing.assert_allclose(np.asarray(got), np.asarray(truncated_decode(model, ids[:, :k])),
                             atol=2e-5)


def test_per_image_lengths_equal_separate_decodes(model):
  ids = np.asarray(model.encode(IMAGES))
  lengths = np.array([3, 32, 17], np.int32)
  got = np.asarray(model.decode(ids, num_tokens=lengths))
  for b, k in enumerate(lengths):
    want = np.asarray(model.decode(ids[b:b + 1, :k]))[0]
    np.testing.assert_allclose(got[b], want, atol=2e-5)


def test_one_compilation_for_every_length(model):
  ids = np.asarray(model.encode(IMAGES))
  model.decode(ids)  # compiles once
  with count_compilations() as compiles:
    outs = [np.asarray(model.decode(ids[:, :k])) for k in range(1, 33)]
    model.decode(ids, num_tokens=np.array([1, 2, 3], np.int32))
  assert compiles == []
  assert not np.allclose(outs[0], outs[-1])  # the lengths did change the images


def test_tail_token_drop_decodes_a_random_prefix_in_training(model):
  key = jax.random.key(7)
  out = model(jnp.asarray(IMAGES), train=True, rngs=nnx.Rngs(sample=key))
  k = int(jax.random.randint(nnx.Rngs(sample=key).sample(), (), 1, 33))
  assert k < 32  # this seed drops some tokens
  ids = model.encode(IMAGES)
  np.testing.assert_allclose(np.asarray(out["recon"]),
                             np.asarray(model.decode(ids[:, :k], clip=False)), atol=2e-5)
  full = model(jnp.asarray(IMAGES), train=False)
  np.testing.assert_allclose(np.asarray(full["recon"]),
                             np.asarray(model.decode(ids, clip=False)), atol=2e-5)


def test_plain_titok_keeps_all_tokens_in_training():
  titok = zoo.create("titok_tiny_vq", seed=1)
  out = titok(jnp.asarray(IMAGES), train=True, rngs=nnx.Rngs(sample=jax.random.key(7)))
  ids = titok.encode(IMAGES)
  np.testing.assert_allclose(np.asarray(out["recon"]), np.asarray(titok.decode(ids, clip=False)),
                             atol=2e-5)


def test_bad_lengths_are_named(model):
  ids = np.asarray(model.encode(IMAGES))
  with pytest.raises(ValueError, match="num_tokens must be in"):
    model.decode(ids, num_tokens=np.array([0, 4, 4], np.int32))
  with pytest.raises(ValueError, match="num_tokens must be integers of shape"):
    model.decode(ids, num_tokens=np.array([4, 4], np.int32))
  with pytest.raises(ValueError, match="between 1 and 32"):
    model.decode(np.zeros((1, 33), np.int32))


def test_released_names_are_legacy_titok_with_256_tokens():
  for size in ("s", "b", "l"):
    name = f"one_d_piece_{size}256"
    cfg = registry.get(name).config
    assert (cfg.num_latent_tokens, cfg.codebook_size, cfg.token_size) == (256, 4096, 12)
    assert cfg.is_legacy and cfg.pixel_decoder and cfg.tail_token_drop
    assert registry.get(name).hf_repo == f"turing-motors/One-D-Piece-{size.upper()}-256"


def test_loads_a_checkpoint_in_titok_layout(tmp_path):
  from safetensors.numpy import save_file
  small = dict(image_size=64, encoder_size="tiny", decoder_size="tiny",
               pixel_cnn=MaskGitCnnConfig(hidden_channels=32, num_res_blocks=1, z_channels=32))
  shapes = nnx.eval_shape(lambda: registry.create("one_d_piece_s256", **small))
  state = seeded_state_dict(expected_torch_shapes(shapes, registry.get("one_d_piece_s256").table(
      shapes.config)), seed=3)
  assert "decoder.latent_token_positional_embedding" in state
  assert state["decoder.latent_token_positional_embedding"].shape[0] == 256
  save_file(state, str(tmp_path / "model.safetensors"))
  loaded = zoo.from_pretrained("one_d_piece_s256", checkpoint=str(tmp_path / "model.safetensors"),
                               **small)
  images = IMAGES[:2]
  ids = loaded.encode(images)
  assert ids.shape == (2, 256)
  np.testing.assert_array_equal(
      np.asarray(loaded.decoder.latent_token_positional_embedding[...]),
      state["decoder.latent_token_positional_embedding"])
  assert np.isfinite(np.asarray(loaded.decode(ids[:, :16]))).all()


def test_recipes():
  stage1 = one_d_piece.get_config("one_d_piece_s256_stage1")
  assert stage1.model == "one_d_piece_s256" and stage1.objective == "proxy_codes"
  assert stage1.total_steps == 1_000_000 and stage1.learning_rate == 1e-4
  stage2 = one_d_piece.get_config("one_d_piece_s256_stage2")
  assert stage2.total_steps == 500_000 and stage2.gan.discriminator_start == 20_000
  assert stage2.loss.perceptual == 0.1 and stage2.gan.discriminator_weight == 0.01
  assert one_d_piece.get_config("tiny").model == "one_d_piece_tiny"
  with pytest.raises(ValueError, match="unknown config"):
    one_d_piece.get_config("one_d_piece_x256")

