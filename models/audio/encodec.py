"""EnCodec (facebookresearch/encodec): SEANet encoder/decoder around a residual quantizer of
EMA codebooks (models/quantizers/ema_vq.py).

The 24 kHz model is causal and mono: `encode` -> ids [B, frames, levels] at 75 Hz, and
`stream_encode` / `stream_decode` give the same codes and audio chunk by chunk. The 48 kHz
model is stereo, non-causal, and works like the original on 1 s segments with 1 % overlap,
each normalised by its RMS: for it (`config.segment` set) `encode` returns the original's
list of per-segment (ids [B, frames, levels], scale [B, 1]) and `decode` overlap-adds them.
"""
import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.audio.inputs import check_audio
from models.audio.seanet import SEANetConfig, SEANetDecoder, SEANetEncoder
from models.quantizers.ema_vq import EMACodebook
from models.quantizers.rvq import ResidualVQ, bits_per_second
from models.quantizers.vq import codebook_stats


@dataclasses.dataclass(frozen=True)
class EncodecConfig:
  sample_rate: int = 24000
  channels: int = 1
  seanet: SEANetConfig = SEANetConfig(causal=True)
  n_q: int = 32
  bins: int = 1024
  target_bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)
  normalize: bool = False  # per-segment RMS normalisation (48 kHz)
  segment: float | None = None  # seconds per segment (48 kHz: 1.0)
  overlap: float = 0.01
  quantizer_dropout: float = 0.0  # our training option; the release trains by bandwidth
  persistent_expiry: bool = False  # see models/quantizers/ema_vq.py


def linear_overlap_add(frames, stride: int):
  """The original's overlap-add: triangular weights peaking mid-segment, normalised."""
  length = frames[0].shape[1]
  t = np.linspace(0.0, 1.0, length + 2)[1:-1]
  weight = jnp.asarray(0.5 - np.abs(t - 0.5), jnp.float32)
  total = stride * (len(frames) - 1) + frames[-1].shape[1]
  out = jnp.zeros((frames[0].shape[0], total, frames[0].shape[2]), jnp.float32)
  weights = jnp.zeros((total,), jnp.float32)
  for i, frame in enumerate(frames):
    n = frame.shape[1]
    out = out.at[:, i * stride:i * stride + n].add(weight[:n, None] * frame)
    weights = weights.at[i * stride:i * stride + n].add(weight[:n])
  return out / weights[None, :, None]


class Encodec(nnx.Module):

  def __init__(self, config: EncodecConfig, *, rngs: nnx.Rngs, dtype=None):
    if config.seanet.channels != config.channels:
      raise ValueError(f"seanet.channels {config.seanet.channels} != channels {config.channels}")
    self.config = config
    self.dtype = dtype
    self.encoder = SEANetEncoder(config.seanet, rngs=rngs)
    self.quantizer = ResidualVQ(
        [EMACodebook(config.seanet.dimension, config.bins,
                     persistent_expiry=config.persistent_expiry, rngs=rngs)
         for _ in range(config.n_q)], dropout=config.quantizer_dropout)
    self.decoder = SEANetDecoder(config.seanet, rngs=rngs)

  @property
  def hop_length(self) -> int:
    return math.prod(self.config.seanet.ratios)

  @property
  def frame_rate(self) -> float:
    return math.ceil(self.config.sample_rate / self.hop_length)  # the original rounds up

  @property
  def num_levels(self) -> int:
    return self.config.n_q

  @property
  def codebook_size(self) -> int:
    return self.config.bins

  def bitrate(self, num_levels: int | None = None) -> float:
    levels = self.num_levels if num_levels is None else num_levels
    return bits_per_second([self.codebook_size] * levels, [self.frame_rate] * levels)

  def levels_for_bandwidth(self, kbps: float) -> int:
    """The original's n_q for a target bandwidth: floor(bits/s / (frame rate x 10 bits))."""
    if kbps not in self.config.target_bandwidths:
      raise ValueError(f"bandwidth {kbps} kbps is not one of {self.config.target_bandwidths}")
    return max(1, int(kbps * 1000 // (self.frame_rate * math.log2(self.codebook_size))))

  def _check(self, audio, sample_rate):
    check_audio(audio, channels=self.config.channels, model_rate=self.config.sample_rate,
                sample_rate=sample_rate)
    return jnp.asarray(audio, self.dtype or jnp.float32)

  def _segments(self, length: int):
    if self.config.segment is None:
      return length, length
    seg = int(self.config.segment * self.config.sample_rate)
    return seg, max(1, int((1 - self.config.overlap) * seg))

  def _encode_frame(self, x, num_levels):
    scale = None
    if self.config.normalize:
      volume = jnp.sqrt(jnp.mean(jnp.mean(x, axis=2, keepdims=True) ** 2, axis=1, keepdims=True))
      scale = 1e-8 + volume  # [B, 1, 1]
      x = x / scale
    _, aux = self.quantizer(self.encoder(x), num_levels=num_levels)
    ids = aux["ids"].astype(jnp.int32)
    return ids if scale is None else (ids, scale.reshape(-1, 1))

  def encode(self, audio, num_levels: int | None = None, *, sample_rate: int | None = None):
    """audio [B, T, C] -> ids [B, frames, levels]; segmented models: [(ids, scale), ...]."""
    x = self._check(audio, sample_rate)
    if self.config.segment is None and not self.config.normalize:
      return self._encode_frame(x, num_levels)
    seg, stride = self._segments(x.shape[1])
    return [self._encode_frame(x[:, o:o + seg], num_levels) for o in range(0, x.shape[1], stride)]

  def _decode_frame(self, ids, scale=None):
    ids = jnp.asarray(ids)
    if ids.ndim != 3:
      raise ValueError(f"ids must be [B, frames, levels]; got shape {ids.shape}")
    out = self.decoder(self.quantizer.lookup(ids).astype(self.dtype or jnp.float32))
    out = out.astype(jnp.float32)
    return out if scale is None else out * scale[:, :, None]

  def decode(self, ids):
    """ids [B, frames, levels] (or a segmented model's list) -> audio [B, T, C]."""
    if not isinstance(ids, list):
      return self._decode_frame(ids)
    frames = [self._decode_frame(*f) if isinstance(f, tuple) else self._decode_frame(f)
              for f in ids]
    if self.config.segment is None:
      return frames[0]
    return linear_overlap_add(frames, self._segments(0)[1])

  def __call__(self, audio, *, train: bool = False, num_levels: int | None = None,
               rngs: nnx.Rngs | None = None, sample_rate: int | None = None):
    """One pass without segmentation (training crops are shorter than a segment)."""
    x = self._check(audio, sample_rate)
    scale = 1.0
    if self.config.normalize:
      scale = 1e-8 + jnp.sqrt(jnp.mean(jnp.mean(x, axis=2, keepdims=True) ** 2, axis=1,
                                       keepdims=True))
    z_q, aux = self.quantizer(self.encoder(x / scale), num_levels=num_levels, train=train,
                              rngs=rngs)
    recon = (self.decoder(z_q.astype(x.dtype)) * scale)[:, :x.shape[1]].astype(jnp.float32)
    ids = aux["ids"]
    return {"recon": recon, "ids": ids, "commitment_loss": aux["commitment_loss"],
            "codebook_loss": aux["codebook_loss"],
            "stats": {"levels_kept": jnp.mean(aux["levels_kept"].astype(jnp.float32)),
                      **codebook_stats(ids[..., 0], self.codebook_size)}}

  def _check_streamable(self):
    if not self.config.seanet.causal or self.config.normalize or self.config.segment:
      raise ValueError("only causal, unnormalised EnCodec models stream (encodec_24khz)")

  def stream_encode(self, state, chunk, num_levels: int | None = None):
    """(state, audio chunk [B, n * hop, C]) -> (state, ids [B, n, levels]); state None first."""
    self._check_streamable()
    x = self._check(chunk, None)
    if x.shape[1] % self.hop_length:
      raise ValueError(f"stream chunks must be whole frames of {self.hop_length} samples; "
                       f"got {x.shape[1]}")
    state, z = self.encoder.stream(state, x)
    _, aux = self.quantizer(z, num_levels=num_levels)
    return state, aux["ids"].astype(jnp.int32)

  def stream_decode(self, state, ids):
    """(state, ids [B, n, levels]) -> (state, audio [B, n * hop, C]); state None first."""
    self._check_streamable()
    z = self.quantizer.lookup(jnp.asarray(ids)).astype(self.dtype or jnp.float32)
    state, audio = self.decoder.stream(state, z)
    return state, audio.astype(jnp.float32)
