"""EnCodec models (encodec/model.py encodec_model_24khz / encodec_model_48khz), a tiny one,
and the audiocraft training recipe (zoo/configs/audio_codec.py):

  python train.py --config zoo/configs/encodec.py:tiny --workdir runs/encodec_tiny

n_q follows the original: the top bandwidth's bits over 10-bit codes at the frame rate
(24 kHz: 24 kbps / (75 Hz x 10) = 32 levels; 48 kHz: 24 kbps / (150 Hz x 10) = 16).
"""
from models.audio.encodec import EncodecConfig
from models.audio.seanet import SEANetConfig
from zoo.configs import audio_codec

MODELS = {
    "encodec_24khz": (EncodecConfig(sample_rate=24000, channels=1,
                                    seanet=SEANetConfig(channels=1, causal=True), n_q=32,
                                    target_bandwidths=(1.5, 3.0, 6.0, 12.0, 24.0)), None),
    "encodec_48khz": (EncodecConfig(sample_rate=48000, channels=2,
                                    seanet=SEANetConfig(channels=2, causal=False,
                                                        norm="time_group_norm"),
                                    n_q=16, target_bandwidths=(3.0, 6.0, 12.0, 24.0),
                                    normalize=True, segment=1.0), None),
    # Causal and mono like the 24 kHz model, CPU-sized: hop 8 at 16 kHz, 4 levels x 64 codes.
    "encodec_tiny": (EncodecConfig(sample_rate=16000, channels=1,
                                   seanet=SEANetConfig(channels=1, n_filters=4, ratios=(4, 2),
                                                       dimension=16, causal=True),
                                   n_q=4, bins=64, target_bandwidths=(12.0,)), None),
}
TINY_ALIASES = {"tiny": "encodec_tiny"}


def get_config(arg: str | None = None):
  """`<model>` (audiocraft's EnCodec recipe) or `tiny`."""
  name = TINY_ALIASES.get(arg or "tiny", arg or "tiny")
  if name not in MODELS:
    raise ValueError(f"unknown EnCodec config {arg!r}; one of "
                     f"{sorted(MODELS) + list(TINY_ALIASES)}")
  return audio_codec.build_config(name, MODELS[name][0], tiny=name == "encodec_tiny",
                                  recipe="encodec")
