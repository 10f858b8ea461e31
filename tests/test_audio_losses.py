"""Codec losses and metrics against DAC's (tests/golden/make_audio_losses_golden.py)."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo.evals import audio_metrics
from zoo.train import audio_losses

G = np.load(pathlib.Path(__file__).parent / "golden" / "audio_losses.npz")
CASES = ("a", "b", "c")  # 16 kHz mono 4000 / 3333 samples, 24 kHz stereo 5000 samples


def _case(name):
  return G[f"{name}_ref"], G[f"{name}_est"], int(G[f"{name}_rate"])


@pytest.mark.parametrize("case", CASES)
def test_training_mel_loss_matches_dac(case):
  ref, est, rate = _case(case)
  ours = [float(audio_losses.mel_loss(e[None], r[None], rate)) for r, e in zip(ref, est)]
  np.testing.assert_allclose(ours, G[f"{case}_mel_train"], rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_eval_metrics_match_dac(case):
  ref, est, rate = _case(case)
  np.testing.assert_allclose(audio_metrics.mel_distance(ref, est, rate), G[f"{case}_mel_eval"],
                             rtol=1e-5)
  np.testing.assert_allclose(audio_metrics.stft_distance(ref, est), G[f"{case}_stft"],
                             rtol=1e-5)
  np.testing.assert_allclose(audio_metrics.si_sdr(ref, est), G[f"{case}_sisdr"], rtol=1e-5)
  l1 = [float(audio_losses.waveform_l1(e, r)) for r, e in zip(ref, est)]
  np.testing.assert_allclose(l1, G[f"{case}_l1"], rtol=1e-6)


def test_si_sdr_separates_scaled_copies_from_noise():
  ref, _, _ = _case("a")
  noise = np.random.default_rng(0).normal(size=ref.shape).astype(np.float32)
  assert np.all(np.asarray(audio_metrics.si_sdr(ref, 0.5 * ref)) > 60)
  assert np.all(np.asarray(audio_metrics.si_sdr(ref, noise)) < -10)


def test_losses_have_finite_gradients():
  ref, est, rate = _case("b")
  grad = jax.grad(lambda e: audio_losses.mel_loss(e, ref, rate)
                  + audio_losses.stft_loss(e, ref))(jnp.asarray(est))
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).max()) > 0


def test_adversarial_losses_follow_their_formulas():
  real = [[jnp.ones((2, 3)), jnp.full((2, 1), 0.5)], [jnp.full((2, 4), -1.0)]]
  fake = [[jnp.zeros((2, 3)), jnp.full((2, 1), -0.5)], [jnp.full((2, 4), 2.0)]]
  # LSGAN (DAC): G sum mean((1 - f)^2); D sum mean(f^2) + mean((1 - r)^2).
  assert float(audio_losses.generator_adversarial_loss(fake, "lsgan")) == pytest.approx(
      1.5 ** 2 + 1.0)
  assert float(audio_losses.discriminator_adversarial_loss(real, fake, "lsgan")) == pytest.approx(
      0.25 + 0.25 + 4.0 + 4.0)
  # Hinge (EnCodec): G sum mean(relu(1 - f)); D sum mean(relu(1 - r)) + mean(relu(1 + f)).
  assert float(audio_losses.generator_adversarial_loss(fake, "hinge")) == pytest.approx(1.5)
  assert float(audio_losses.discriminator_adversarial_loss(real, fake, "hinge")) == pytest.approx(
      0.5 + 0.5 + 2.0 + 3.0)
  # Feature matching: every map but the logits, L1 mean.
  assert float(audio_losses.feature_matching_loss(real, fake)) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="unknown GAN loss"):
    audio_losses.generator_adversarial_loss(fake, "wgan")


def test_metrics_reject_bad_inputs():
  ref, est, rate = _case("a")
  with pytest.raises(ValueError, match="differ in shape"):
    audio_metrics.si_sdr(ref, est[:, :-1])
  with pytest.raises(ValueError, match=r"\[B, T, C\]"):
    audio_metrics.mel_distance(ref[..., 0], est[..., 0], rate)
  with pytest.raises(ValueError, match="differ in shape"):
    audio_losses.mel_loss(ref, est[:, :-1], rate)


def test_pesq_and_stoi_rank_a_clean_copy_above_a_noisy_one():
  ref, _, rate = _case("a")
  with pytest.raises(ValueError, match="STOI needs at least"):
    audio_metrics.stoi_score(ref, ref, rate)  # 0.25 s: too short for STOI
  ref = np.tile(ref, (1, 4, 1))  # 1 s
  rng = np.random.default_rng(0)
  noisy = np.clip(ref + 0.3 * rng.normal(size=ref.shape), -1, 1).astype(np.float32)
  assert audio_metrics.optional_metrics_available() == {"pesq": True, "stoi": True}
  clean_pesq, noisy_pesq = (audio_metrics.pesq_score(ref, x, rate) for x in (ref, noisy))
  assert np.all(clean_pesq > 4.4) and np.all(noisy_pesq < clean_pesq - 1.0)
  with pytest.raises(ValueError, match="PESQ failed on clip 0"):
    audio_metrics.pesq_score(np.zeros_like(ref), np.zeros_like(ref), rate)
  clean_stoi, noisy_stoi = (audio_metrics.stoi_score(ref, x, rate) for x in (ref, noisy))
  assert np.all(clean_stoi > 0.99) and np.all(noisy_stoi < clean_stoi)
