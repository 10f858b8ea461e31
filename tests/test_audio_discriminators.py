"""Audio discriminators against DAC's (tests/golden/make_audio_discriminators_golden.py)."""
import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.discriminators.audio import AudioDiscriminator, AudioDiscriminatorConfig
from models.layers.spectral import hann_window
from zoo.convert import audio_discriminators as convert
from zoo.convert.common import CheckpointMismatchError, expected_torch_shapes
from zoo.convert.seeded import codec_state_dict

GOLDEN = pathlib.Path(__file__).parent / "golden"
SPEC = json.loads((GOLDEN / "audio_discriminators_shapes.json").read_text())
G = np.load(GOLDEN / "audio_discriminators.npz")
CONFIG = AudioDiscriminatorConfig(sample_rate=16000, periods=(2, 3), fft_sizes=(512, 256))


def _stats(maps):
  return np.array([[float(m.mean()), float(jnp.abs(m).mean()), float(m.max())] for m in maps])


@pytest.fixture(scope="module")
def disc():
  model = nnx.eval_shape(lambda: AudioDiscriminator(CONFIG, rngs=nnx.Rngs(0)))
  weights = codec_state_dict({k: tuple(v) for k, v in SPEC["shapes"].items()}, 0)
  convert.load_state_dict(model, weights)
  return model


def test_names_and_shapes_match_the_official_state_dict(disc):
  assert expected_torch_shapes(disc, convert.table(disc)) == {
      k: tuple(v) for k, v in SPEC["shapes"].items()}
  assert sum(int(np.prod(v)) for v in SPEC["shapes"].values()) == SPEC["num_params"]


def test_feature_maps_and_logits_match_dac(disc):
  outputs = disc(G["audio"])
  assert len(outputs) == 4  # MPD 2, 3; MRD 512, 256
  for d, maps in enumerate(outputs):
    logits = np.asarray(maps[-1])
    # MRD bands are concatenated on the frequency axis: same layout as the official [t, f].
    np.testing.assert_allclose(logits, G[f"d{d}_logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_stats(maps), G[f"d{d}_stats"], rtol=1e-4, atol=1e-4)


def test_input_gradients_are_finite():
  disc = AudioDiscriminator(dataclasses.replace(CONFIG, width_scale=0.125), rngs=nnx.Rngs(0))
  grad = jax.grad(lambda x: sum(jnp.mean(m[-1]) for m in disc(x)))(jnp.asarray(G["audio"]))
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0


def test_errors():
  model = AudioDiscriminator(AudioDiscriminatorConfig(periods=(2,), fft_sizes=(64,),
                                                      width_scale=0.125), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"takes \[B, T, 1\] audio"):
    model(np.zeros((1, 1, 400), np.float32))
  with pytest.raises(CheckpointMismatchError, match="missing"):
    convert.load_state_dict(model, {})
  with pytest.raises(ValueError, match="needs periods, fft_sizes or msstft_n_ffts"):
    AudioDiscriminator(AudioDiscriminatorConfig(periods=(), fft_sizes=()), rngs=nnx.Rngs(0))


MS = np.load(GOLDEN / "msstft.npz")
MS_SPEC = json.loads((GOLDEN / "msstft_shapes.json").read_text())


def test_msstft_matches_encodec():
  """EnCodec's MS-STFT discriminator on stereo audio (tests/golden/make_msstft_golden.py)."""
  cfg = AudioDiscriminatorConfig(sample_rate=8000, channels=2, periods=(), fft_sizes=(),
                                 msstft_n_ffts=(256, 128), msstft_filters=8)
  model = nnx.eval_shape(lambda: AudioDiscriminator(cfg, rngs=nnx.Rngs(0)))
  shapes = {k: tuple(v) for k, v in MS_SPEC["shapes"].items()}
  windows = {k for k in shapes if k.endswith("spec_transform.window")}  # torchaudio buffers
  assert expected_torch_shapes(model, convert.table(model)) == {
      k: v for k, v in shapes.items() if k not in windows}
  weights = codec_state_dict(shapes, 0)
  with pytest.raises(CheckpointMismatchError, match="not a periodic Hann window"):
    convert.load_state_dict(model, weights)  # seeded noise where the windows belong
  weights.update({k: hann_window(shapes[k][0]) for k in windows})
  convert.load_state_dict(model, weights, model_name="msstft")
  for d, maps in enumerate(model(MS["audio"])):
    np.testing.assert_allclose(maps[-1], MS[f"d{d}_logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_stats(maps), MS[f"d{d}_stats"], rtol=1e-4, atol=1e-4)
