"""zoo.data for audio: the built-in synthesized set, WAV files, resampling, grain pipelines."""
import numpy as np
import pytest
from scipy.io import wavfile

from zoo.data import make_audio_dataset, make_audio_eval_batches, read_wav, resample, write_wav
from zoo.data.audio_samples import KINDS, SampleAudio
from zoo.data.audio_transforms import to_channels


def peak_frequency(audio, rate):
  spectrum = np.abs(np.fft.rfft(audio[:, 0] * np.hanning(len(audio))))
  return np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)]


def test_builtin_set_is_deterministic_bounded_and_split():
  a, b = SampleAudio("train", 16000), SampleAudio("train", 16000)
  for i in range(len(KINDS)):
    clip, rate = a[i]
    assert rate == 16000 and clip.shape == (32000, 1) and clip.dtype == np.float32
    np.testing.assert_array_equal(clip, b[i][0])
    assert 0.29 < np.abs(clip).max() <= 0.9
  train = {SampleAudio("train", 8000)[i][0].tobytes() for i in range(10)}
  held_out = {SampleAudio("eval", 8000)[i][0].tobytes() for i in range(10)}
  assert not train & held_out
  assert SampleAudio("eval", 24000)[0][0].shape == (48000, 1)  # made at the rate asked for


def test_speech_like_clips_have_voiced_energy_and_a_moving_pitch():
  rate = 16000
  clip = SampleAudio("eval", rate)[0][0][:, 0]  # clip 0 is speech-like
  spectrum = np.abs(np.fft.rfft(clip)) ** 2
  freqs = np.fft.rfftfreq(len(clip), 1 / rate)
  assert spectrum[(freqs > 80) & (freqs < 4000)].sum() > 0.6 * spectrum.sum()
  frame = 1024  # the strongest harmonic-series frequency per voiced frame moves over time
  pitches = []
  for start in range(0, len(clip) - frame, frame):
    seg = clip[start:start + frame]
    if np.abs(seg).max() > 0.2 * np.abs(clip).max():
      ac = np.correlate(seg, seg, "full")[frame - 1:]
      lag = np.argmax(ac[rate // 400:rate // 60]) + rate // 400
      pitches.append(rate / lag)
  assert len(pitches) >= 5 and 60 < np.median(pitches) < 400
  assert np.ptp(pitches) > 5  # not a monotone


def test_resampling_keeps_a_sine_and_round_trips():
  rate = 44100
  t = np.arange(rate) / rate
  sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[:, None]
  down = resample(sine, rate, 16000)
  assert down.shape == (16000, 1)
  assert abs(peak_frequency(down, 16000) - 1000) <= 1
  back = resample(down, 16000, rate)
  assert np.abs(back[2000:-2000] - sine[2000:-2000]).max() < 1e-2
  with pytest.raises(ValueError, match="positive"):
    resample(sine, 0, 16000)


def test_wav_round_trip_and_formats(tmp_path):
  rng = np.random.default_rng(0)
  stereo = rng.uniform(-0.9, 0.9, (1000, 2)).astype(np.float32)
  write_wav(tmp_path / "x.wav", stereo, 22050)
  back, rate = read_wav(tmp_path / "x.wav")
  assert rate == 22050 and back.shape == (1000, 2)
  assert np.abs(back - stereo).max() <= 0.5 / 32768
  mono = (stereo[:, 0] * 2 ** 31).astype(np.int32)
  wavfile.write(tmp_path / "i32.wav", 8000, mono)
  np.testing.assert_allclose(read_wav(tmp_path / "i32.wav")[0][:, 0], stereo[:, 0], atol=1e-6)
  wavfile.write(tmp_path / "f32.wav", 8000, stereo)
  np.testing.assert_array_equal(read_wav(tmp_path / "f32.wav")[0], stereo)
  (tmp_path / "song.flac").write_bytes(b"fLaC")
  with pytest.raises(ValueError, match="only WAV files"):
    read_wav(tmp_path / "song.flac")
  (tmp_path / "broken.wav").write_bytes(b"RIFF1234")
  with pytest.raises(ValueError, match="not a readable WAV"):
    read_wav(tmp_path / "broken.wav")


def test_channel_conversion():
  mono = np.ones((4, 1), np.float32)
  assert to_channels(mono, 2).shape == (4, 2)
  assert to_channels(np.stack([np.ones(4), np.zeros(4)], 1), 1)[0, 0] == 0.5
  with pytest.raises(ValueError, match="3-channel audio into 2"):
    to_channels(np.ones((4, 3)), 2)


def test_folder_of_wavs_at_another_rate(tmp_path):
  for i in range(3):  # 1 s stereo at 48 kHz, a different tone each
    t = np.arange(48000) / 48000
    tone = 0.5 * np.sin(2 * np.pi * (500 + 500 * i) * t)
    write_wav(tmp_path / f"clip{i}.wav", np.stack([tone, tone], 1), 48000)
  (tmp_path / "notes.txt").write_text("not audio")
  batches = make_audio_eval_batches(f"folder:{tmp_path}", sample_rate=16000, channels=1,
                                    length=8000, batch_size=2)
  clips = np.concatenate(batches)
  assert clips.shape == (3, 8000, 1)
  assert [round(peak_frequency(c, 16000)) for c in clips] == [500, 1000, 1500]
  ds = make_audio_dataset(f"folder:{tmp_path}", sample_rate=16000, channels=1,
                          crop_length=4000, batch_size=2, train=True, seed=0)
  assert next(iter(ds))["audio"].shape == (2, 4000, 1)


def test_folder_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="audio folder not found"):
    make_audio_eval_batches(f"folder:{tmp_path}/missing", sample_rate=16000, channels=1,
                            length=100, batch_size=1)
  (tmp_path / "a.flac").write_bytes(b"x")
  with pytest.raises(ValueError, match="holds .flac files, which are not read"):
    make_audio_eval_batches(f"folder:{tmp_path}", sample_rate=16000, channels=1, length=100,
                            batch_size=1)
  with pytest.raises(ValueError, match="Unknown audio data spec"):
    make_audio_eval_batches("builtin:photos", sample_rate=16000, channels=1, length=100,
                            batch_size=1)


def test_processes_read_disjoint_crops_of_one_global_batch():
  kwargs = dict(sample_rate=8000, channels=1, crop_length=800, train=True, seed=3)
  whole = next(iter(make_audio_dataset("builtin:audio", batch_size=4, **kwargs)))["audio"]
  parts = [next(iter(make_audio_dataset("builtin:audio", batch_size=2, process_index=p,
                                        process_count=2, **kwargs)))["audio"] for p in (0, 1)]
  # Process p holds global positions p, p + 2, ...: together they are the one-process batch.
  np.testing.assert_array_equal(np.stack(parts, 1).reshape(whole.shape), whole)


class FakeAudioFeature:
  """What TfdsAudio reads of a tfds.features.Audio (building a real one needs TensorFlow)."""
  sample_rate, dtype = 8000, np.int16


class FakeBuilder:
  class info:  # noqa: N801 (the attribute path of a TFDS builder)
    features = {"id": object(), "speech": FakeAudioFeature()}


def test_tfds_audio_is_scaled_and_resampled(monkeypatch):
  """librispeech-like records: int16 tones at 8 kHz; clip i is at 200 (i + 1) Hz."""
  from zoo.data import tfds_source
  t = np.arange(8000) / 8000
  records = [{"speech": (8000 * np.sin(2 * np.pi * 200 * (i + 1) * t)).astype(np.int16),
              "id": i} for i in range(6)]
  splits = {"train": records[:4], "validation": records[4:]}
  monkeypatch.setattr(tfds_source, "open_builder", lambda name, data_dir: FakeBuilder())
  monkeypatch.setattr(tfds_source.tfds, "data_source",
                      lambda name, split, data_dir, download: splits[split])
  batches = make_audio_eval_batches("tfds:librispeech", sample_rate=16000, channels=2,
                                    length=16000, batch_size=2)
  clips = np.concatenate(batches)
  assert clips.shape == (2, 16000, 2)  # validation: ids 4 and 5, upsampled, stereo copies
  assert [round(peak_frequency(c, 16000)) for c in clips] == [1000, 1200]
  assert 0.23 < np.abs(clips).max() < 0.26  # int16 8000 / 32768
  train = make_audio_dataset("tfds:librispeech", sample_rate=16000, channels=1,
                             crop_length=4000, batch_size=4, train=True)
  assert next(iter(train))["audio"].shape == (4, 4000, 1)


def test_tfds_audio_errors(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="not prepared"):
    make_audio_eval_batches("tfds:mnist", sample_rate=16000, channels=1, length=10,
                            batch_size=1, data_dir=str(tmp_path))
  from zoo.data import tfds_source

  def needs_tensorflow(name, data_dir):
    raise ModuleNotFoundError("No module named 'tensorflow'")
  monkeypatch.setattr(tfds_source, "open_builder", needs_tensorflow)
  with pytest.raises(ImportError, match="Audio feature needs TensorFlow"):
    make_audio_eval_batches("tfds:librispeech", sample_rate=16000, channels=1, length=10,
                            batch_size=1)
