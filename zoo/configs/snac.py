"""SNAC models (the config.json of hubertsiuzdak/snac_24khz, snac_32khz, snac_44khz) and recipes.

SNAC released no training code; its recipe here is DAC's (zoo/configs/audio_codec.py), the
codec it is adapted from.

  python train.py --config zoo/configs/snac.py:tiny --workdir runs/snac_tiny
  python train.py --config zoo/configs/snac.py:snac_24khz --workdir runs/snac24 \\
      --config.data=folder:/data/wavs
"""
from models.audio.snac import SNACConfig
from zoo.configs import audio_codec

RELEASES = {name: f"hubertsiuzdak/{name}" for name in ("snac_24khz", "snac_32khz", "snac_44khz")}

MODELS = {
    # Speech, 0.98 kbps: hop 512 (46.9 Hz), 3 levels of 12 bits at 11.7 / 23.4 / 46.9 Hz.
    "snac_24khz": (SNACConfig(sample_rate=24000, encoder_dim=48, encoder_rates=(2, 4, 8, 8),
                              decoder_dim=1024, decoder_rates=(8, 8, 4, 2),
                              attn_window_size=None, vq_strides=(4, 2, 1)),
                   RELEASES["snac_24khz"]),
    # Music and sound effects, 1.9 kbps: hop 384 (83.3 Hz), 4 levels (strides 8, 4, 2, 1).
    "snac_32khz": (SNACConfig(sample_rate=32000, encoder_dim=64, encoder_rates=(2, 3, 8, 8),
                              decoder_dim=1536, decoder_rates=(8, 8, 3, 2), attn_window_size=32,
                              vq_strides=(8, 4, 2, 1)), RELEASES["snac_32khz"]),
    # The same architecture at 44.1 kHz, 2.6 kbps: hop 384 (114.8 Hz).
    "snac_44khz": (SNACConfig(sample_rate=44100, encoder_dim=64, encoder_rates=(2, 3, 8, 8),
                              decoder_dim=1536, decoder_rates=(8, 8, 3, 2), attn_window_size=32,
                              vq_strides=(8, 4, 2, 1)), RELEASES["snac_44khz"]),
    # A CPU-sized SNAC with every part (depthwise convs, attention, noise, 3 rates): 16 kHz,
    # hop 8, attention windows of 4 frames in heads of 8, levels at 500 / 1000 / 2000 Hz.
    "snac_tiny": (SNACConfig(sample_rate=16000, encoder_dim=2, encoder_rates=(2, 4),
                             decoder_dim=16, decoder_rates=(4, 2), attn_window_size=4,
                             attn_head_dim=8, codebook_size=32, codebook_dim=4,
                             vq_strides=(4, 2, 1), quantizer_dropout=0.5), None),
}
TINY_ALIASES = {"tiny": "snac_tiny"}


def get_config(arg: str | None = None):
  """`<model>` (DAC's recipe on that SNAC) or `tiny`."""
  name = TINY_ALIASES.get(arg or "tiny", arg or "tiny")
  if name not in MODELS:
    raise ValueError(f"unknown SNAC config {arg!r}; one of {sorted(MODELS) + list(TINY_ALIASES)}")
  return audio_codec.build_config(name, MODELS[name][0], tiny=name == "snac_tiny")
