"""MaskGIT-VQGAN (f16, 1024 codes): TiTok's proxy-code teacher and the legacy pixel decoder.

`encode(images) -> ids [B, (H/16)*(W/16)]` row-major; `decode(ids) -> images`.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.image.inputs import check_images
from models.layers.maskgit_cnn import MaskGitCnnConfig, MaskGitDecoder, MaskGitEncoder
from models.quantizers.vq import VectorQuantizer


@dataclasses.dataclass(frozen=True)
class MaskGitVQGANConfig:
  image_size: int = 256
  codebook_size: int = 1024
  commitment_cost: float = 0.25
  cnn: MaskGitCnnConfig = MaskGitCnnConfig()

  def __post_init__(self):
    object.__setattr__(self, "cnn", MaskGitCnnConfig.coerce(self.cnn))

  @property
  def downsample(self) -> int:
    return 2 ** (len(self.cnn.channel_mult) - 1)


class MaskGitVQGAN(nnx.Module):

  def __init__(self, cfg: MaskGitVQGANConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    self.encoder = MaskGitEncoder(cfg.cnn, rngs=rngs, dtype=dtype)
    self.quantize = VectorQuantizer(cfg.codebook_size, cfg.cnn.z_channels,
                                    commitment_cost=cfg.commitment_cost, rngs=rngs)
    self.decoder = MaskGitDecoder(cfg.cnn, rngs=rngs, dtype=dtype)

  def encode(self, images):
    check_images(images, self.config.image_size)
    return _encode(self, images)

  def decode(self, ids, *, clip: bool = True):
    side = self.config.image_size // self.config.downsample
    if not hasattr(ids, "ndim"):
      raise TypeError(f"token ids must be an array; got {type(ids).__name__}")
    if ids.ndim != 2 or ids.shape[1] != side * side:
      raise ValueError(f"ids must be [B, {side * side}] (a {side}x{side} grid); got {ids.shape}")
    if not jnp.issubdtype(ids.dtype, jnp.integer):
      raise TypeError(f"token ids must be integers; got {ids.dtype}")
    if not isinstance(ids, jax.core.Tracer) and ids.size:  # values only when concrete
      lo, hi = int(np.min(ids)), int(np.max(ids))
      if lo < 0 or hi >= self.config.codebook_size:
        raise ValueError(f"token ids must be in [0, {self.config.codebook_size}); got [{lo}, {hi}]")
    out = _decode(self, ids)
    return jnp.clip(out, 0.0, 1.0) if clip else out

  def __call__(self, images):
    z_q, aux = self.quantize(self.encoder(images))
    return {"recon": self.decoder(z_q), **aux}


@functools.partial(nnx.jit, graph=False)  # tree mode: ~2 ms per call instead of ~35
def _encode(model: MaskGitVQGAN, images):
  _, aux = model.quantize(model.encoder(images))
  side = images.shape[1] // model.config.downsample  # not -1: that fails for an empty batch
  return aux["ids"].reshape(images.shape[0], side * side)


@functools.partial(nnx.jit, graph=False)  # tree mode: ~2 ms per call instead of ~35
def _decode(model: MaskGitVQGAN, ids):
  side = int(round(ids.shape[1] ** 0.5))
  codes = model.quantize.lookup(ids).reshape(ids.shape[0], side, side, model.config.cnn.z_channels)
  return model.decoder(codes)
