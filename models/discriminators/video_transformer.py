"""LARP's transformer video discriminator (models/loss.py `TransformerDiscriminator`).

Clip -> 3-D patches (+ a fixed 3-D sin-cos embedding) behind a learned class token -> timm ViT
blocks -> LayerNorm (eps 1e-6) of the class token -> one logit per clip.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from models.layers.axes import axes
from models.layers.sincos import sincos_3d
from models.layers.transformer import layer_norm
from models.layers.video_patches import PatchEmbed3D
from models.layers.vit import Block


@dataclasses.dataclass(frozen=True)
class VideoDiscriminatorConfig:
  input_size: int = 128
  frame_num: int = 16
  temporal_patch_size: int = 4
  patch_size: int = 8
  width: int = 512  # the reproduce script's disc_tran_hidden_size
  num_heads: int = 8
  depth: int = 12


@functools.lru_cache(maxsize=None)
def _pos_embed(width, grid, frames):
  return sincos_3d(width, grid, frames)


class VideoTransformerDiscriminator(nnx.Module):

  def __init__(self, cfg: VideoDiscriminatorConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    self.x_embedder = PatchEmbed3D(cfg.temporal_patch_size, cfg.patch_size, cfg.width,
                                   rngs=rngs, dtype=dtype)
    bound = (6.0 / (1 + cfg.width)) ** 0.5  # xavier_uniform_ of a [1, 1, width] tensor
    self.cls_token = nnx.Param(jax.random.uniform(rngs.params(), (1, 1, cfg.width), jnp.float32,
                                                  -bound, bound), **axes(None, None, "embed"))
    self.blocks = nnx.List([Block(cfg.width, cfg.num_heads, rngs=rngs, dtype=dtype)
                            for _ in range(cfg.depth)])
    self.norm_final = layer_norm(cfg.width, rngs=rngs, dtype=dtype, eps=1e-6)
    self.fc = nnx.Linear(cfg.width, 1, dtype=dtype, rngs=rngs,
                         kernel_init=nnx.initializers.xavier_uniform(),
                         kernel_metadata=axes("embed", None), bias_metadata=axes(None))

  def __call__(self, video):
    """[B, T, H, W, 3] in [0, 1] -> logits [B, 1]."""
    c = self.config
    if video.shape[1:4] != (c.frame_num, c.input_size, c.input_size):
      raise ValueError(f"the discriminator takes {c.frame_num}x{c.input_size}x{c.input_size} "
                       f"clips; got {video.shape}")
    x = self.x_embedder(video)
    pe = _pos_embed(c.width, c.input_size // c.patch_size, c.frame_num // c.temporal_patch_size)
    x = x + jnp.asarray(pe, x.dtype)
    cls = jnp.broadcast_to(self.cls_token[...].astype(x.dtype), (x.shape[0], 1, c.width))
    h = jnp.concatenate([cls, x], axis=1)
    for block in self.blocks:
      h = block(h)
    return self.fc(self.norm_final(h[:, 0])).astype(jnp.float32)
