"""DAC models (descript-audio-codec conf/final/*.yml and the releases' metadata) and recipes.

  python train.py --config zoo/configs/dac.py:tiny --workdir runs/dac_tiny
  python train.py --config zoo/configs/dac.py:dac_44khz --workdir runs/dac44 \\
      --config.data=folder:/data/wavs
"""
from models.audio.dac import DACConfig
from zoo.configs import audio_codec

MODELS = {
    # 8 kbps at 44.1 kHz: 9 levels x 10 bits x 86.1 Hz.
    "dac_44khz": (DACConfig(encoder_rates=(2, 4, 8, 8), decoder_rates=(8, 8, 4, 2),
                            n_codebooks=9, quantizer_dropout=0.5, sample_rate=44100), None),
    "dac_24khz": (DACConfig(encoder_rates=(2, 4, 5, 8), decoder_rates=(8, 5, 4, 2),
                            n_codebooks=32, quantizer_dropout=0.5, sample_rate=24000), None),
    "dac_16khz": (DACConfig(encoder_rates=(2, 4, 5, 8), decoder_rates=(8, 5, 4, 2),
                            n_codebooks=12, quantizer_dropout=0.5, sample_rate=16000), None),
    # 16 kbps at 44.1 kHz (release 1.0.0): a 128-d latent, 18 levels.
    "dac_44khz_16kbps": (DACConfig(encoder_rates=(2, 4, 8, 8), latent_dim=128,
                                   decoder_rates=(8, 8, 4, 2), n_codebooks=18,
                                   quantizer_dropout=0.5, sample_rate=44100), None),
    # A CPU-sized DAC for tests and the tiny recipe: 16 kHz, hop 64 (250 frames/s), 6 levels.
    "dac_tiny": (DACConfig(encoder_dim=8, encoder_rates=(2, 4, 8), latent_dim=32,
                           decoder_dim=64, decoder_rates=(8, 4, 2), n_codebooks=6,
                           codebook_size=64, codebook_dim=4, quantizer_dropout=0.5,
                           sample_rate=16000), None),
}
TINY_ALIASES = {"tiny": "dac_tiny"}


def get_config(arg: str | None = None):
  """`<model>` (the DAC recipe) or `tiny`."""
  name = TINY_ALIASES.get(arg or "tiny", arg or "tiny")
  if name not in MODELS:
    raise ValueError(f"unknown DAC config {arg!r}; one of {sorted(MODELS) + list(TINY_ALIASES)}")
  cfg = MODELS[name][0]
  return audio_codec.build_config(name, cfg, tiny=name == "dac_tiny")
