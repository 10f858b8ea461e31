"""Cutting videos into non-overlapping 3-D patches and back (NTHWC).

`PatchEmbed3D` is torch's Conv3d with stride = kernel (timm/LARP `PatchEmbed3D.proj`), written
as a dense layer on flattened (pt, ph, pw, c) patches: the same numbers, and a plain matmul
on every backend instead of a 3-D convolution.
"""
import einops
from flax import nnx

from models.layers.axes import axes


def patchify(video, pt: int, p: int):
  """[B, T, H, W, C] -> [B, (T/pt)(H/p)(W/p), pt p p C], patches in (t, h, w) order."""
  return einops.rearrange(video, "b (t pt) (h p1) (w p2) c -> b (t h w) (pt p1 p2 c)",
                          pt=pt, p1=p, p2=p)


def unpatchify(patches, pt: int, p: int, h: int, w: int, channels: int = 3):
  """The inverse of `patchify` for a grid of h x w patches per frame."""
  return einops.rearrange(patches, "b (t h w) (pt p1 p2 c) -> b (t pt) (h p1) (w p2) c",
                          h=h, w=w, pt=pt, p1=p, p2=p, c=channels)


class PatchEmbed3D(nnx.Module):

  def __init__(self, temporal_patch: int, patch: int, width: int, *, channels: int = 3,
               rngs: nnx.Rngs, dtype=None):
    self.pt, self.p = temporal_patch, patch
    self.proj = nnx.Linear(temporal_patch * patch * patch * channels, width, dtype=dtype,
                           rngs=rngs, kernel_init=nnx.initializers.xavier_uniform(),
                           kernel_metadata=axes("patch", "embed"), bias_metadata=axes("embed"))

  def __call__(self, video):
    return self.proj(patchify(video, self.pt, self.p))
