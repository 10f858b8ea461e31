"""The SD/SDXL-style f8 KL autoencoder (diffusers `AutoencoderKL`) as FlexTok uses it.

FlexTok (apple/ml-flextok, `flextok/vae_wrapper.py`) trains its 1D tokenizer on this VAE's
latents and decodes its flow outputs through this VAE's decoder. Architecture facts kept from
diffusers: GroupNorm eps 1e-6 everywhere, SiLU, residual blocks with a biased 1x1
`conv_shortcut` when the width changes, downsampling by a zero pad of one row/column at the
bottom/right followed by a stride-2 3x3 conv, upsampling by nearest x2 then a 3x3 conv, a
single-head mid-block self-attention (its own GroupNorm, q/k/v/out Linear with bias, residual,
no rescale), `quant_conv` / `post_quant_conv` 1x1 convs, and the posterior's logvar clamp
[-30, 20]. FlexTok's wrapper semantics: images in [-1, 1], latents = posterior (mode or
sample) x scaling_factor with no shift, decode(latents / scaling_factor) with no clamping.

Public API: `encode(images in [0, 1])` -> scaled latents [B, H/8, W/8, C];
`decode(latents)` -> images in [0, 1]. The VAE is fully convolutional: any H, W that are
multiples of the downsampling factor work. NHWC throughout.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.quantizers.gaussian import DiagonalGaussian

GROUPNORM_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class KLVAEConfig:
  latent_channels: int = 16
  block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
  layers_per_block: int = 2
  norm_num_groups: int = 32
  # Latents are posterior x scaling_factor (FlexTok: no shift). None: not known until a
  # checkpoint's config.json gives it (`zoo.from_pretrained` fills it in).
  scaling_factor: float | None = None
  in_channels: int = 3
  out_channels: int = 3
  use_quant_conv: bool = True
  use_post_quant_conv: bool = True
  mid_block_add_attention: bool = True
  image_size: int = 256  # nominal training / eval size; encode accepts any multiple of 8

  def __post_init__(self):
    object.__setattr__(self, "block_out_channels", tuple(self.block_out_channels))  # JSON lists
    if not self.block_out_channels:
      raise ValueError("block_out_channels must list at least one level")
    bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
    if bad:
      raise ValueError(f"block_out_channels {self.block_out_channels} must be multiples of "
                       f"norm_num_groups={self.norm_num_groups}; {bad} are not")
    if self.scaling_factor is not None and not self.scaling_factor > 0:
      raise ValueError(f"scaling_factor must be positive, got {self.scaling_factor}")
    if self.image_size % self.downsample_factor:
      raise ValueError(f"image_size {self.image_size} is not a multiple of the downsampling "
                       f"factor {self.downsample_factor}")

  @property
  def downsample_factor(self) -> int:
    return 2 ** (len(self.block_out_channels) - 1)


def _conv(cin, cout, kernel, *, rngs, dtype=None, stride=1, padding="SAME"):
  return nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride), padding=padding,
                  dtype=dtype, rngs=rngs,
                  kernel_metadata=axes(None, None, "conv_in", "conv_out"),
                  bias_metadata=axes("conv_out"))


class GroupNorm(nnx.Module):
  """GroupNorm computed in float32 whatever the activation dtype (bf16 statistics drift)."""

  def __init__(self, channels, groups, *, rngs):
    self.norm = nnx.GroupNorm(channels, num_groups=groups, epsilon=GROUPNORM_EPS,
                              use_fast_variance=False, dtype=jnp.float32, rngs=rngs,
                              scale_metadata=axes("norm"), bias_metadata=axes("norm"))

  def __call__(self, x):
    return self.norm(x.astype(jnp.float32)).astype(x.dtype)


class ResnetBlock(nnx.Module):
  """norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus the (1x1-projected) input."""

  def __init__(self, cin, cout, groups, *, rngs, dtype=None):
    self.norm1 = GroupNorm(cin, groups, rngs=rngs)
    self.conv1 = _conv(cin, cout, 3, rngs=rngs, dtype=dtype)
    self.norm2 = GroupNorm(cout, groups, rngs=rngs)
    self.conv2 = _conv(cout, cout, 3, rngs=rngs, dtype=dtype)
    self.conv_shortcut = _conv(cin, cout, 1, rngs=rngs, dtype=dtype) if cin != cout else None

  def __call__(self, x):
    h = self.conv1(jax.nn.silu(self.norm1(x)))
    h = self.conv2(jax.nn.silu(self.norm2(h)))
    return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Downsample(nnx.Module):
  """Zero-pads one row at the bottom and one column at the right, then a stride-2 3x3 conv."""

  def __init__(self, channels, *, rngs, dtype=None):
    self.conv = _conv(channels, channels, 3, stride=2, padding=((0, 1), (0, 1)), rngs=rngs,
                      dtype=dtype)

  def __call__(self, x):
    return self.conv(x)


class Upsample(nnx.Module):
  """Nearest-neighbour x2, then a 3x3 conv."""

  def __init__(self, channels, *, rngs, dtype=None):
    self.conv = _conv(channels, channels, 3, rngs=rngs, dtype=dtype)

  def __call__(self, x):
    return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


class SpatialSelfAttention(nnx.Module):
  """One head over all h*w positions: x + to_out(attn(to_q/k/v(group_norm(x))))."""

  def __init__(self, channels, groups, *, rngs, dtype=None):
    self.group_norm = GroupNorm(channels, groups, rngs=rngs)
    dense = functools.partial(nnx.Linear, channels, channels, dtype=dtype, rngs=rngs,
                              kernel_metadata=axes("embed", "heads"), bias_metadata=axes("heads"))
    self.to_q, self.to_k, self.to_v = dense(), dense(), dense()
    self.to_out = nnx.Linear(channels, channels, dtype=dtype, rngs=rngs,
                             kernel_metadata=axes("heads", "embed"), bias_metadata=axes("embed"))

  def __call__(self, x):
    b, h, w, c = x.shape
    t = self.group_norm(x).reshape(b, h * w, 1, c)
    out = dot_product_attention(self.to_q(t), self.to_k(t), self.to_v(t))  # scale 1/sqrt(c)
    return x + self.to_out(out.reshape(b, h, w, c))


class MidBlock(nnx.Module):
  """resnet, self-attention, resnet (the attention can be switched off by the config)."""

  def __init__(self, channels, groups, add_attention, *, rngs, dtype=None):
    self.resnets = nnx.List(
        [ResnetBlock(channels, channels, groups, rngs=rngs, dtype=dtype) for _ in range(2)])
    self.attention = (SpatialSelfAttention(channels, groups, rngs=rngs, dtype=dtype)
                      if add_attention else None)

  def __call__(self, x):
    x = self.resnets[0](x)
    if self.attention is not None:
      x = self.attention(x)
    return self.resnets[1](x)


class Level(nnx.Module):
  """Residual blocks of one resolution, then an optional down- or upsampler."""

  def __init__(self, cin, cout, num_blocks, groups, resample, *, rngs, dtype=None):
    self.resnets = nnx.List([ResnetBlock(cin if i == 0 else cout, cout, groups, rngs=rngs,
                                         dtype=dtype) for i in range(num_blocks)])
    self.resample = resample

  def __call__(self, x):
    for block in self.resnets:
      x = block(x)
    return x if self.resample is None else self.resample(x)


class Encoder(nnx.Module):
  """[B, H, W, 3] in [-1, 1] -> [B, H/f, W/f, 2C] (mean || logvar before quant_conv)."""

  def __init__(self, cfg: KLVAEConfig, *, rngs, dtype=None):
    ch, g = cfg.block_out_channels, cfg.norm_num_groups
    self.conv_in = _conv(cfg.in_channels, ch[0], 3, rngs=rngs, dtype=dtype)
    self.down_blocks = nnx.List([
        Level(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block, g,
              Downsample(ch[i], rngs=rngs, dtype=dtype) if i < len(ch) - 1 else None,
              rngs=rngs, dtype=dtype)
        for i in range(len(ch))])
    self.mid_block = MidBlock(ch[-1], g, cfg.mid_block_add_attention, rngs=rngs, dtype=dtype)
    self.conv_norm_out = GroupNorm(ch[-1], g, rngs=rngs)
    self.conv_out = _conv(ch[-1], 2 * cfg.latent_channels, 3, rngs=rngs, dtype=dtype)

  def __call__(self, x):
    x = self.conv_in(x)
    for block in self.down_blocks:
      x = block(x)
    x = self.mid_block(x)
    return self.conv_out(jax.nn.silu(self.conv_norm_out(x)))


class Decoder(nnx.Module):
  """[B, h, w, C] -> [B, f*h, f*w, 3]; `up_blocks[0]` is the lowest resolution (diffusers)."""

  def __init__(self, cfg: KLVAEConfig, *, rngs, dtype=None):
    ch, g = tuple(reversed(cfg.block_out_channels)), cfg.norm_num_groups
    self.conv_in = _conv(cfg.latent_channels, ch[0], 3, rngs=rngs, dtype=dtype)
    self.mid_block = MidBlock(ch[0], g, cfg.mid_block_add_attention, rngs=rngs, dtype=dtype)
    self.up_blocks = nnx.List([
        Level(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block + 1, g,
              Upsample(ch[i], rngs=rngs, dtype=dtype) if i < len(ch) - 1 else None,
              rngs=rngs, dtype=dtype)
        for i in range(len(ch))])
    self.conv_norm_out = GroupNorm(ch[-1], g, rngs=rngs)
    self.conv_out = _conv(ch[-1], cfg.out_channels, 3, rngs=rngs, dtype=dtype)

  def __call__(self, z):
    x = self.mid_block(self.conv_in(z))
    for block in self.up_blocks:
      x = block(x)
    return self.conv_out(jax.nn.silu(self.conv_norm_out(x)))


class KLVAE(nnx.Module):
  """`encode(images) -> latents`, `decode(latents) -> images`, `__call__` for training."""

  def __init__(self, cfg: KLVAEConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    # A plain attribute, not the config's: `from_pretrained` may learn it from config.json.
    self.scaling_factor = cfg.scaling_factor
    self.encoder = Encoder(cfg, rngs=rngs, dtype=dtype)
    c2 = 2 * cfg.latent_channels
    self.quant_conv = _conv(c2, c2, 1, rngs=rngs, dtype=dtype) if cfg.use_quant_conv else None
    c = cfg.latent_channels
    self.post_quant_conv = (_conv(c, c, 1, rngs=rngs, dtype=dtype)
                            if cfg.use_post_quant_conv else None)
    self.decoder = Decoder(cfg, rngs=rngs, dtype=dtype)

  # -- pieces, traceable -------------------------------------------------------------------
  def encode_latents(self, x):
    """x [B, H, W, 3] in [-1, 1] -> posterior parameters [B, h, w, 2C] (mean || raw logvar)."""
    h = self.encoder(x)
    return h if self.quant_conv is None else self.quant_conv(h)

  def encode_moments(self, x):
    """x in [-1, 1] -> (mean, logvar clamped to [-30, 20]), float32 [B, h, w, C] each."""
    posterior = DiagonalGaussian(self.encode_latents(x))
    return posterior.mean, posterior.logvar

  def decode_latents_raw(self, z):
    """Unscaled latents [B, h, w, C] -> decoder output [B, H, W, 3], [-1, 1] domain, unclipped."""
    z = z.astype(jnp.float32)
    if self.post_quant_conv is not None:
      z = self.post_quant_conv(z)
    return self.decoder(z)

  def _scale(self) -> float:
    if self.scaling_factor is None:
      raise ValueError(
          "this KLVAE has no scaling_factor: load it with zoo.from_pretrained from a repo whose "
          "config.json gives one, or create it with scaling_factor=...")
    return float(self.scaling_factor)

  # -- public API --------------------------------------------------------------------------
  def encode(self, images, *, sample: bool = False, rngs: nnx.Rngs | None = None):
    """images [B, H, W, 3] in [0, 1] -> latents [B, H/f, W/f, C] x scaling_factor.

    The posterior mode by default; `sample=True` draws with `rngs` (its `sample` stream), as
    FlexTok's wrapper does with `sample_posterior=True`.
    """
    check_vae_images(images, self.config.downsample_factor)
    s = self._scale()
    if sample:
      if rngs is None:
        raise ValueError("encode(sample=True) needs rngs=nnx.Rngs(sample=...)")
      return _encode_sample(self, images, rngs.sample(), s)
    return _encode_mode(self, images, s)

  def decode(self, latents, *, clip: bool = True):
    """Scaled latents [B, h, w, C] -> images [B, f*h, f*w, 3] in [0, 1] (clipped by default)."""
    self._check_latents(latents)
    out = _decode(self, latents, self._scale())
    return jnp.clip(out, 0.0, 1.0) if clip else out

  def __call__(self, images, *, train: bool = True, rngs: nnx.Rngs | None = None):
    """Training forward on [0, 1] images: {'recon' in [0, 1] (unclipped), 'kl' [B]}."""
    posterior = DiagonalGaussian(self.encode_latents(images * 2.0 - 1.0))
    z = posterior.sample(rngs.sample()) if train and rngs is not None else posterior.mode()
    recon = (self.decode_latents_raw(z) + 1.0) * 0.5
    return {"recon": recon, "kl": posterior.kl()}

  def _check_latents(self, latents):
    c = self.config.latent_channels
    if not hasattr(latents, "ndim"):
      raise TypeError(f"latents must be an array; got {type(latents).__name__}")
    if latents.ndim != 4 or latents.shape[-1] != c:
      raise ValueError(f"latents must be NHWC [B, h, w, {c}]; got shape {latents.shape}")
    if not jnp.issubdtype(latents.dtype, jnp.floating):
      raise TypeError(f"latents are continuous and must be float; got {latents.dtype}")
    if not isinstance(latents, jax.core.Tracer) and latents.size:
      xp = np if isinstance(latents, np.ndarray) else jnp
      if not bool(xp.all(xp.isfinite(latents))):
        raise ValueError("latents contain NaN or Inf")


def check_vae_images(x, factor: int, *, name: str = "images"):
  """NHWC float in [0, 1], H and W multiples of `factor`; errors name the problem."""
  shape = getattr(x, "shape", None)
  if shape is None or len(shape) != 4:
    raise ValueError(f"{name} must be NHWC [B, H, W, 3]; got shape {shape}")
  if shape[-1] != 3:
    raise ValueError(f"{name} must have 3 channels on the last axis (NHWC); got shape {shape}")
  if shape[1] % factor or shape[2] % factor or not shape[1] or not shape[2]:
    raise ValueError(f"{name} height and width must be positive multiples of {factor} (the "
                     f"VAE's downsampling factor); got {shape[1]}x{shape[2]}")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name} must be float in [0, 1]; got dtype {x.dtype} (divide uint8 by 255)")
  if isinstance(x, jax.core.Tracer) or not x.size:
    return
  xp = np if isinstance(x, np.ndarray) else jnp  # no host copy of device arrays
  if not bool(xp.all(xp.isfinite(x))):  # first: XLA's CPU min/max may skip NaNs
    raise ValueError(f"{name} contain NaN or Inf")
  lo, hi = float(xp.min(x)), float(xp.max(x))
  if lo < 0.0 or hi > 1.0:
    raise ValueError(f"{name} must be in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")


@functools.partial(nnx.jit, graph=False, static_argnums=2)  # tree mode: cheap dispatch
def _encode_mode(model: KLVAE, images, scale):
  mean, _ = model.encode_moments(images.astype(jnp.float32) * 2.0 - 1.0)
  return mean * scale


@functools.partial(nnx.jit, graph=False, static_argnums=3)
def _encode_sample(model: KLVAE, images, key, scale):
  posterior = DiagonalGaussian(model.encode_latents(images.astype(jnp.float32) * 2.0 - 1.0))
  return posterior.sample(key) * scale


@functools.partial(nnx.jit, graph=False, static_argnums=2)
def _decode(model: KLVAE, latents, scale):
  out = model.decode_latents_raw(latents.astype(jnp.float32) / scale).astype(jnp.float32)
  return (out + 1.0) * 0.5
