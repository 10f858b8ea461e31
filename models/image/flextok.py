"""FlexTok (apple/ml-flextok): images -> 1..256 ordered FSQ tokens -> rectified-flow decoder.

Pipeline (official module in brackets):
  VAE latents [B, h, w, C] (optional `vae`; without one the "latents" are the images in
  [-1, 1], for the tiny CPU variants)
  encoder: 2x2 patches -> Linear (`PatchEmbedder`) + fixed 2D sin-cos posemb -> concat with
    K learned registers (`Registers1D`) -> ViT (mask "causal_last": patches see patches,
    register i sees the patches and registers <= i) -> registers -> affine-free norm ->
    Linear to 6 -> FSQ [8,8,8,5,5,5] (ids int32 [B, K]).
  decoder (`FlexTransformer` with AdaLN-zero): register stream = FSQ codes -> Linear ->
    nested dropout (positions >= keep_k become the learned `dropout_mask_token`) -> null
    condition for CFG (zeros or a learned vector), in the order the config lists; noised
    latent patches -> Linear + posemb; [patches, registers] -> blocks modulated by the
    timestep embedding with one modulation per sub-sequence -> patches -> norm, AdaLN shift /
    scale, Linear -> unpatchify: the flow velocity (noise - clean).
  sampling (`MinRFPipeline`): x_1 = noise, Euler x <- x - v(x, t) / T for t = 1, (T-1)/T,
    ..., 1/T, with CFG (uncond + g (cond - uncond)) or APG (momentum -0.5, norm threshold
    2.5, orthogonal part only, eta 0) when guidance_scale != 1.
Variable lengths run as one program: ids are padded to K on the host and `keep_k` is data.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.image.inputs import check_images
from models.layers.axes import axes
from models.layers.flextok_blocks import (AdaLNBlock, Block, plain_norm, run_blocks,
                                          timestep_embedding, xavier_linear)
from models.quantizers.fsq import FSQ

if TYPE_CHECKING:  # the VAE is imported only when a config has one
  from models.image.kl_vae import KLVAEConfig

MASK_MODES = ("full", "causal", "causal_last")
REGISTER_OPS = ("proj", "nested_dropout", "nullcond")
KEEP_K_MODES = ("uniform", "pow2", "uniform_pow2")
APG_MOMENTUM, APG_NORM_THRESHOLD = -0.5, 2.5  # fixed in MinRFPipeline


@dataclasses.dataclass(frozen=True)
class FlexTokConfig:
  image_size: int = 256
  vae: KLVAEConfig | None = None  # None: no VAE (pixels in [-1, 1], or latent space only)
  latent_channels: int = 16  # VAE latent channels (3 without a VAE)
  downsample: int = 8  # VAE factor (1 without a VAE)
  patch_size: int = 2  # on the latent grid
  enc_dim: int = 1152
  enc_depth: int = 18
  dec_dim: int = 1152
  dec_depth: int = 18
  head_dim: int = 64
  mlp_ratio: float = 4.0
  num_registers: int = 256
  fsq_levels: tuple = (8, 8, 8, 5, 5, 5)
  drop_quant_p: float = 0.0
  enc_mask_mode: str = "causal_last"
  dec_mask_mode: str = "full"
  enc_head_norm: bool = True  # LinearHead's affine-free norm before the projection
  dec_register_ops: tuple = ("proj", "nested_dropout", "nullcond")
  dec_register_proj_bias: bool = True
  nullcond: str = "zero"  # "zero" (ZeroNullCond) or "learned" (LearnedNullCond)
  cfg_dropout_p: float = 0.0  # training: null condition with this probability per image
  adaln_expansion: int = 2  # 2: separate modulation for patches and registers
  dec_head_norm: bool = True
  dec_head_adaln: bool = True
  time_freq_dim: int = 256
  max_timestep: float = 1.0
  keep_k_mode: str = "pow2"  # MaskedNestedDropout size_sampling_mode in training
  noise_logit_normal: bool = True  # MinRFNoiseModule ln
  noise_stratified: bool = False
  noise_mode_scale: float = 0.0
  guidance_scale: float = 7.5  # decode defaults: the README's 7.5 with APG
  use_apg: bool = True
  num_steps: int = 25
  eval_num_steps: int = 10  # `__call__(train=False)` (trainer evaluation)
  eval_guidance_scale: float = 1.0
  remat: bool = False
  # Official module names (keys of encoder/decoder.module_dict) for the converter:
  # pairs (role, name); config_from_metadata fills them from the checkpoint header.
  torch_names: tuple = ()

  def __post_init__(self):
    if isinstance(self.vae, dict):  # from JSON / ml_collections overrides
      from models.image.kl_vae import KLVAEConfig
      object.__setattr__(self, "vae", KLVAEConfig(**self.vae))
    object.__setattr__(self, "fsq_levels", tuple(int(v) for v in self.fsq_levels))
    object.__setattr__(self, "dec_register_ops", tuple(self.dec_register_ops))
    object.__setattr__(self, "torch_names", tuple(tuple(p) for p in self.torch_names))
    if self.vae is None and self.downsample == 1 and self.latent_channels != 3:
      raise ValueError("without a VAE (downsample 1) the model works on RGB pixels: "
                       f"latent_channels must be 3, got {self.latent_channels}")
    if self.vae is not None:
      vae_c = getattr(self.vae, "latent_channels", self.latent_channels)
      vae_f = getattr(self.vae, "downsample_factor", self.downsample)
      if (vae_c, vae_f) != (self.latent_channels, self.downsample):
        raise ValueError(f"the VAE gives {vae_c}-channel latents at 1/{vae_f} scale but the "
                         f"config says latent_channels={self.latent_channels}, "
                         f"downsample={self.downsample}")
    if self.image_size % (self.downsample * self.patch_size):
      raise ValueError(f"image_size {self.image_size} is not a multiple of downsample x patch "
                       f"({self.downsample} x {self.patch_size})")
    for name in ("enc_mask_mode", "dec_mask_mode"):
      if getattr(self, name) not in MASK_MODES:
        raise ValueError(f"{name} must be one of {MASK_MODES}, got {getattr(self, name)!r}")
    if sorted(self.dec_register_ops) != sorted(REGISTER_OPS):
      raise ValueError(f"dec_register_ops must order {REGISTER_OPS}, got {self.dec_register_ops}")
    if self.nullcond not in ("zero", "learned"):
      raise ValueError(f"nullcond must be 'zero' or 'learned', got {self.nullcond!r}")
    if self.keep_k_mode not in KEEP_K_MODES:
      raise ValueError(f"keep_k_mode must be one of {KEEP_K_MODES}, got {self.keep_k_mode!r}")
    if self.adaln_expansion not in (1, 2):
      raise ValueError(f"adaln_expansion must be 1 or 2, got {self.adaln_expansion}")
    if self.keep_k_mode == "pow2" and self.num_registers & (self.num_registers - 1):
      raise ValueError(f"keep_k_mode 'pow2' needs a power-of-two num_registers, "
                       f"got {self.num_registers}")

  @property
  def pixel_space(self) -> bool:
    """No VAE and no downsampling: the flow runs on images mapped to [-1, 1]."""
    return self.vae is None and self.downsample == 1

  @property
  def latent_size(self) -> int:
    return self.image_size // self.downsample

  @property
  def grid(self) -> int:
    return self.latent_size // self.patch_size

  @property
  def codebook_size(self) -> int:
    return int(np.prod(self.fsq_levels))

  def name_of(self, role: str, default: str) -> str:
    return dict(self.torch_names).get(role, default)


def sincos_posemb(h: int, w: int, dim: int, temperature: float = 10000.0) -> np.ndarray:
  """FlexTok's build_2d_sincos_posemb as [h, w, dim] (float32, numpy).

  The official grid is built (w, h)-major and read back as (h, w): position n of the flat
  list carries (a, b) = (n // h, n % h) and lands at row n // w, column n % w. For square
  grids the first half of the channels therefore encodes the row, the second the column.
  """
  if dim % 4:
    raise ValueError(f"sin-cos posemb needs dim divisible by 4, got {dim}")
  quarter = dim // 4
  omega = 1.0 / temperature ** (np.arange(quarter, dtype=np.float32) / quarter)
  a, b = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32),
                     indexing="ij")
  out_a = a.reshape(-1)[:, None] * omega[None]
  out_b = b.reshape(-1)[:, None] * omega[None]
  emb = np.concatenate([np.sin(out_a), np.cos(out_a), np.sin(out_b), np.cos(out_b)], axis=1)
  return emb.reshape(h, w, dim).astype(np.float32)


def packed_mask(lengths: tuple, mode: str) -> np.ndarray:
  """[S, S] boolean (True keeps) for one sample's concatenated sub-sequences."""
  s = sum(lengths)
  q, k = np.arange(s)[:, None], np.arange(s)[None, :]
  if mode == "full":
    return np.ones((s, s), bool)
  if mode == "causal":
    return k <= q
  prefix = s - lengths[-1]  # causal_last: all but the last sub-sequence are a full prefix
  return (k < prefix) | (k <= q)


def patchify(x, p: int):
  """[B, H, W, C] -> [B, (H/p)(W/p), p*p*C], patch vector ordered (row, col, channel)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(x, p: int, grid: int):
  b, _, d = x.shape
  c = d // (p * p)
  x = x.reshape(b, grid, grid, p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, grid * p, grid * p, c)


def sample_keep_k(key, batch: int, n: int, mode: str):
  """MaskedNestedDropout.sample_keep_k per image: uniform 1..n, powers of two, or uniform
  rounded up to the next power of two."""
  if mode == "pow2":
    exps = jax.random.randint(key, (batch,), 0, int(np.log2(n)) + 1)
    return (2 ** exps).astype(jnp.int32)
  k = jax.random.randint(key, (batch,), 1, n + 1)
  if mode == "uniform_pow2":
    k = (2 ** jnp.ceil(jnp.log2(k.astype(jnp.float32)))).astype(jnp.int32)
  return k.astype(jnp.int32)


def sample_sigmas(key, batch: int, cfg: FlexTokConfig):
  """MinRFNoiseModule's sigma (= timestep): logit-normal (optionally stratified) or uniform
  with SD3's mode scale."""
  if cfg.noise_logit_normal:
    if cfg.noise_stratified:
      u = jnp.arange(batch) / batch + jax.random.uniform(key, (batch,)) / batch
      z = jax.scipy.special.erfinv(2 * u - 1) * np.sqrt(2.0)
    else:
      z = jax.random.normal(key, (batch,))
    return jax.nn.sigmoid(z)
  s = jax.random.uniform(key, (batch,))
  if cfg.noise_mode_scale:
    s = 1 - s - cfg.noise_mode_scale * (jnp.cos(jnp.pi * s / 2) ** 2 - 1 + s)
  return s


class FlexTokEncoder(nnx.Module):

  def __init__(self, cfg: FlexTokConfig, *, rngs: nnx.Rngs, dtype=None):
    self.cfg = cfg
    d, p, c = cfg.enc_dim, cfg.patch_size, cfg.latent_channels
    self.patch_proj = xavier_linear(p * p * c, d, rngs=rngs, dtype=dtype, names=(None, "embed"))
    self.registers = nnx.Param(
        0.02 * jax.random.truncated_normal(rngs.params(), -2.0 / 0.02, 2.0 / 0.02,
                                           (cfg.num_registers, d)), **axes(None, "embed"))
    self.blocks = nnx.List([Block(d, cfg.head_dim, cfg.mlp_ratio, rngs=rngs, dtype=dtype)
                            for _ in range(cfg.enc_depth)])
    self.head = xavier_linear(d, len(cfg.fsq_levels), rngs=rngs, dtype=dtype,
                              names=("embed", None), zero=True)

  def __call__(self, latents):
    """[B, h, w, C] -> pre-quantization register features [B, K, 6]."""
    cfg = self.cfg
    b = latents.shape[0]
    x = self.patch_proj(patchify(latents, cfg.patch_size))
    x = x + sincos_posemb(cfg.grid, cfg.grid, cfg.enc_dim).reshape(1, -1, cfg.enc_dim)
    regs = jnp.broadcast_to(self.registers[...].astype(x.dtype), (b,) + self.registers.shape)
    n = x.shape[1]
    x = jnp.concatenate([x, regs], axis=1)
    mask = packed_mask((n, cfg.num_registers), cfg.enc_mask_mode)[None, None]
    x = run_blocks(self.blocks, x, mask=mask, remat=cfg.remat)[:, n:]
    return self.head(plain_norm(x) if cfg.enc_head_norm else x)


class FlexTokDecoder(nnx.Module):

  def __init__(self, cfg: FlexTokConfig, *, rngs: nnx.Rngs, dtype=None):
    self.cfg = cfg
    d, p, c = cfg.dec_dim, cfg.patch_size, cfg.latent_channels
    q = len(cfg.fsq_levels)
    self.register_proj = xavier_linear(q, d, rngs=rngs, dtype=dtype, names=(None, "embed"),
                                       bias=cfg.dec_register_proj_bias)
    ops = cfg.dec_register_ops
    width_at = lambda op: d if ops.index(op) > ops.index("proj") else q
    tn = lambda n: 0.02 * jax.random.truncated_normal(rngs.params(), -100.0, 100.0, (n,))
    self.dropout_mask_token = nnx.Param(tn(width_at("nested_dropout")), **axes(None))
    self.nullcond = (nnx.Param(tn(width_at("nullcond")), **axes(None))
                     if cfg.nullcond == "learned" else None)
    self.patch_proj = xavier_linear(p * p * c, d, rngs=rngs, dtype=dtype, names=(None, "embed"))
    self.time_mlp = nnx.List([
        xavier_linear(cfg.time_freq_dim, d, rngs=rngs, dtype=dtype, names=(None, "embed")),
        xavier_linear(d, d, rngs=rngs, dtype=dtype, names=("embed", "embed"))])
    self.blocks = nnx.List([
        AdaLNBlock(d, cfg.head_dim, cfg.mlp_ratio, cfg.adaln_expansion, rngs=rngs, dtype=dtype)
        for _ in range(cfg.dec_depth)])
    self.head_adaln = (xavier_linear(d, 2 * d, rngs=rngs, dtype=dtype, names=("embed", "mlp"),
                                     zero=True) if cfg.dec_head_adaln else None)
    self.head = xavier_linear(d, p * p * c, rngs=rngs, dtype=dtype, names=("embed", None),
                              zero=True)

  def registers(self, quant, keep_k, uncond):
    """FSQ codes [B, K, 6] -> the decoder's register tokens [B, K, D]."""
    k = quant.shape[1]
    x = quant
    for op in self.cfg.dec_register_ops:
      if op == "proj":
        x = self.register_proj(x)
      elif op == "nested_dropout":
        keep = (jnp.arange(k)[None, :] < keep_k[:, None])[..., None]
        x = jnp.where(keep, x, self.dropout_mask_token[...].astype(x.dtype))
      else:
        null = (self.nullcond[...].astype(x.dtype) if self.nullcond is not None
                else jnp.zeros((), x.dtype))
        x = jnp.where(uncond[:, None, None], null, x)
    return x

  def __call__(self, noised, t, quant, keep_k, uncond, *, remat: bool | None = None):
    """noised [B, h, w, C], t [B] in [0, 1], quant [B, K, 6], keep_k [B], uncond [B] bool
    -> velocity [B, h, w, C]. `remat` (default: the config's) is for training only."""
    cfg = self.cfg
    regs = self.registers(quant, keep_k, uncond)
    x = self.patch_proj(patchify(noised, cfg.patch_size).astype(regs.dtype))
    x = x + sincos_posemb(cfg.grid, cfg.grid, cfg.dec_dim).reshape(1, -1, cfg.dec_dim)
    temb = timestep_embedding(t, cfg.time_freq_dim, max_timestep=cfg.max_timestep)
    temb = self.time_mlp[1](jax.nn.silu(self.time_mlp[0](temb.astype(x.dtype))))
    n, k = x.shape[1], regs.shape[1]
    seq = jnp.concatenate([x, regs], axis=1)
    mask = packed_mask((n, k), cfg.dec_mask_mode)[None, None]
    segment = (np.concatenate([np.zeros(n, np.int32), np.ones(k, np.int32)])
               if cfg.adaln_expansion == 2 else np.zeros(n + k, np.int32))
    seq = run_blocks(self.blocks, seq, mask=mask, cond=(temb, jnp.asarray(segment)),
                     remat=cfg.remat if remat is None else remat)
    x = seq[:, :n]
    if cfg.dec_head_norm:
      x = plain_norm(x)
    if self.head_adaln is not None:
      shift, scale = jnp.split(self.head_adaln(jax.nn.silu(temb))[:, None], 2, axis=-1)
      x = x * (1.0 + scale) + shift
    return unpatchify(self.head(x), cfg.patch_size, cfg.grid)


def _apg_update(cond, uncond, scale, running):
  """normalized_guidance (eta 0, threshold 2.5) with the momentum buffer; per image over
  (h, w, C)."""
  diff = cond - uncond
  running = diff + APG_MOMENTUM * running
  diff = running
  norm = jnp.sqrt(jnp.sum(diff * diff, axis=(1, 2, 3), keepdims=True))
  diff = diff * jnp.minimum(1.0, APG_NORM_THRESHOLD / norm)
  unit = cond / jnp.maximum(jnp.sqrt(jnp.sum(cond * cond, axis=(1, 2, 3), keepdims=True)),
                            1e-12)
  parallel = jnp.sum(diff * unit, axis=(1, 2, 3), keepdims=True) * unit
  return cond + (scale - 1.0) * (diff - parallel), running


class FlexTok(nnx.Module):
  """`encode(images) -> ids [B, K]`, `decode(ids) -> images`, `__call__` for training."""

  def __init__(self, cfg: FlexTokConfig, *, rngs: nnx.Rngs, dtype=None):
    self.config = cfg
    if cfg.vae is not None:
      from models.image.kl_vae import KLVAE  # the VAE lives in its own module
      self.vae = KLVAE(cfg.vae, rngs=rngs, dtype=dtype)
    else:
      self.vae = None
    self.encoder = FlexTokEncoder(cfg, rngs=rngs, dtype=dtype)
    self.regularizer = FSQ(cfg.fsq_levels, drop_quant_p=cfg.drop_quant_p)
    self.decoder = FlexTokDecoder(cfg, rngs=rngs, dtype=dtype)

  # -- latent space ------------------------------------------------------------------------
  def to_latents(self, images):
    """images [0, 1] -> the flow's data space (scaled VAE latents, or pixels in [-1, 1])."""
    if self.vae is None:
      self._check_pixel_space()
      return images * 2.0 - 1.0
    return jax.lax.stop_gradient(self.vae.encode(images))  # frozen, as FlexTok's no_grad

  def _check_pixel_space(self):
    if not self.config.pixel_space:
      raise ValueError(
          f"this FlexTok has no VAE (its latents are {self.config.latent_channels}-channel at "
          f"1/{self.config.downsample} scale); use encode_latents / sample_latents on VAE "
          "latents, or build it with a vae config")

  def from_latents(self, latents):
    if self.vae is None:
      self._check_pixel_space()
      return (latents + 1.0) / 2.0
    return self.vae.decode(latents)

  # -- pieces, traceable -------------------------------------------------------------------
  def encode_latents(self, latents, *, train: bool = False, rngs: nnx.Rngs | None = None):
    """Latents [B, h, w, C] -> (FSQ codes [B, K, 6] float32, ids int32 [B, K])."""
    quant, aux = self.regularizer(self.encoder(latents), train=train, rngs=rngs)
    return quant, aux["ids"]

  def decoder_velocity(self, noised_latents, t, registers, keep_k, uncond=None, *,
                       remat: bool | None = None):
    """The flow velocity at `t` [B] given FSQ codes `registers` [B, K, 6] of which the first
    keep_k [B] are kept; `uncond` [B] bool selects the null condition (CFG)."""
    b = noised_latents.shape[0]
    uncond = jnp.zeros((b,), bool) if uncond is None else uncond
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), (b,))
    return self.decoder(noised_latents, t, registers, jnp.asarray(keep_k, jnp.int32), uncond,
                        remat=remat)

  def sample_latents(self, registers, keep_k, noise, *, num_steps: int, guidance_scale=1.0,
                     do_cfg: bool = False, use_apg: bool = False):
    """Euler sampling from t=1 (noise [B, h, w, C]) to 0, one fori_loop over the steps."""
    b = noise.shape[0]
    dt = 1.0 / num_steps
    regs2 = jnp.concatenate([registers, registers]) if do_cfg else registers
    keep2 = jnp.concatenate([keep_k, keep_k]) if do_cfg else keep_k
    uncond = jnp.arange(regs2.shape[0]) >= b

    def step(j, carry):
      x, running = carry
      t = jnp.full((b,), (num_steps - j) / num_steps, jnp.float32)
      if do_cfg:
        v = self.decoder_velocity(jnp.concatenate([x, x]), jnp.concatenate([t, t]), regs2,
                                  keep2, uncond, remat=False).astype(jnp.float32)
        cond, unc = v[:b], v[b:]
        if use_apg:
          v, running = _apg_update(cond, unc, guidance_scale, running)
        else:
          v = unc + guidance_scale * (cond - unc)
      else:
        v = self.decoder_velocity(x, t, registers, keep_k, remat=False).astype(jnp.float32)
      return x - dt * v, running

    x0 = noise.astype(jnp.float32)
    x, _ = jax.lax.fori_loop(0, num_steps, step, (x0, jnp.zeros_like(x0)))
    return x

  # -- public API --------------------------------------------------------------------------
  def encode(self, images):
    """images [B, H, W, 3] in [0, 1] -> ids int32 [B, K] (K = num_registers)."""
    if self.vae is None:
      self._check_pixel_space()
    check_images(images, self.config.image_size)
    return _encode_ids(self, images)

  def decode(self, ids, *, num_tokens=None, num_steps: int | None = None,
             guidance_scale: float | None = None, use_apg: bool | None = None,
             rngs: nnx.Rngs | None = None, noise=None, clip: bool = True):
    """ids [B, k], 1 <= k <= K (the first k tokens; the rest become the mask token), or
    ids [B, K] with `num_tokens` [B] per-image lengths -> images [B, H, W, 3] in [0, 1].

    The starting noise is `noise` [B, h, w, C] (latent grid), else drawn from
    `rngs.sample()`, else from a fixed key 0. Defaults come from the config (25 steps,
    guidance 7.5 with APG for the released models). One compiled program serves every k.
    """
    cfg = self.config
    if self.vae is None:
      self._check_pixel_space()
    ids, keep_k = self._pad_ids(ids, num_tokens)
    num_steps = cfg.num_steps if num_steps is None else int(num_steps)
    if num_steps < 1:
      raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    scale = cfg.guidance_scale if guidance_scale is None else guidance_scale
    apg = cfg.use_apg if use_apg is None else bool(use_apg)
    b = ids.shape[0]
    shape = (b, cfg.latent_size, cfg.latent_size, cfg.latent_channels)
    if noise is None:
      key = rngs.sample() if rngs is not None else jax.random.key(0)
      noise = jax.random.normal(key, shape, jnp.float32)
    elif tuple(noise.shape) != shape:
      raise ValueError(f"noise must be [B, h, w, C] = {shape} (the latent grid), "
                       f"got {tuple(noise.shape)}")
    do_cfg = isinstance(scale, jax.core.Tracer) or float(scale) != 1.0
    out = _decode(self, ids, keep_k, noise, jnp.asarray(scale, jnp.float32),
                  num_steps=num_steps, do_cfg=do_cfg, use_apg=apg)
    return jnp.clip(out, 0.0, 1.0) if clip else out

  def __call__(self, images, *, train: bool = True, rngs: nnx.Rngs | None = None):
    """train: {'losses': {'flow'}, 'stats', 'ids'}; eval: {'recon'} decoded with all K
    tokens, `eval_num_steps` Euler steps and a fixed noise (seed 0)."""
    cfg = self.config
    latents = self.to_latents(images)
    b = images.shape[0]
    if not train:
      _, ids = self.encode_latents(latents)
      keep_k = jnp.full((b,), cfg.num_registers, jnp.int32)
      quant = self.regularizer.lookup(ids)
      noise = jax.random.normal(jax.random.key(0), latents.shape, jnp.float32)
      do_cfg = cfg.eval_guidance_scale != 1.0
      x = self.sample_latents(quant, keep_k, noise, num_steps=cfg.eval_num_steps,
                              guidance_scale=cfg.eval_guidance_scale, do_cfg=do_cfg,
                              use_apg=cfg.use_apg)
      return {"recon": self.from_latents(x), "ids": ids}
    if rngs is None:
      raise ValueError("the training forward needs rngs=nnx.Rngs(sample=key)")
    quant, ids = self.encode_latents(latents, train=True, rngs=rngs)
    keep_k = sample_keep_k(rngs.sample(), b, cfg.num_registers, cfg.keep_k_mode)
    uncond = jax.random.bernoulli(rngs.sample(), cfg.cfg_dropout_p, (b,))
    sigma = sample_sigmas(rngs.sample(), b, cfg)
    noise = jax.random.normal(rngs.sample(), latents.shape, jnp.float32)
    s = sigma[:, None, None, None]
    noised = s * noise + (1.0 - s) * latents.astype(jnp.float32)
    v = self.decoder_velocity(noised.astype(latents.dtype), sigma, quant, keep_k, uncond)
    target = noise - latents.astype(jnp.float32)
    flow = jnp.mean((v.astype(jnp.float32) - target) ** 2)
    stats = {"keep_k_mean": jnp.mean(keep_k.astype(jnp.float32)),
             "sigma_mean": jnp.mean(sigma),
             "null_cond_frac": jnp.mean(uncond.astype(jnp.float32)),
             "token_usage": jnp.mean(jnp.zeros((cfg.codebook_size,)).at[ids.reshape(-1)].set(1.0))}
    return {"losses": {"flow": flow}, "stats": stats, "ids": ids}

  def _pad_ids(self, ids, num_tokens):
    """(ids padded with 0 to [B, K], keep_k int32 [B]); numpy on the host when concrete."""
    k_max, n_codes = self.config.num_registers, self.config.codebook_size
    if not hasattr(ids, "ndim") or not hasattr(ids, "dtype"):
      raise TypeError(f"token ids must be an array; got {type(ids).__name__}")
    if ids.ndim != 2:
      raise ValueError(f"token ids must be [B, k]; got shape {ids.shape}")
    if not jnp.issubdtype(ids.dtype, jnp.integer):
      raise TypeError(f"token ids must be integers; got {ids.dtype}")
    b, k = ids.shape
    if not 1 <= k <= k_max:
      raise ValueError(f"between 1 and {k_max} tokens can be decoded; got {k}")
    traced = isinstance(ids, jax.core.Tracer)
    if not traced and ids.size:
      lo, hi = int(np.min(ids)), int(np.max(ids))
      if lo < 0 or hi >= n_codes:
        raise ValueError(f"token ids must be in [0, {n_codes}); got [{lo}, {hi}]")
    if num_tokens is not None:
      if k != k_max:
        raise ValueError(f"num_tokens needs ids padded to [B, {k_max}]; got {ids.shape}")
      if getattr(num_tokens, "shape", None) != (b,):
        raise ValueError(f"num_tokens must be [B] = [{b}]; got shape "
                         f"{getattr(num_tokens, 'shape', None)}")
      if not isinstance(num_tokens, jax.core.Tracer):
        nt = np.asarray(num_tokens)
        if not np.issubdtype(nt.dtype, np.integer):
          raise TypeError(f"num_tokens must be integers; got {nt.dtype}")
        if nt.size and (nt.min() < 1 or nt.max() > k_max):
          raise ValueError(f"num_tokens must be in [1, {k_max}]; got [{nt.min()}, {nt.max()}]")
      keep_k = jnp.asarray(num_tokens, jnp.int32)
    else:
      keep_k = np.full((b,), k, np.int32)
    if k < k_max:
      pad = ((0, 0), (0, k_max - k))
      ids = jnp.pad(ids, pad) if traced else np.pad(np.asarray(ids), pad)
    return jnp.asarray(ids, jnp.int32), jnp.asarray(keep_k, jnp.int32)


@functools.partial(nnx.jit, graph=False)
def _encode_ids(model: FlexTok, images):
  return model.encode_latents(model.to_latents(images))[1]


@functools.partial(nnx.jit, graph=False, static_argnames=("num_steps", "do_cfg", "use_apg"))
def _decode(model: FlexTok, ids, keep_k, noise, guidance_scale, *, num_steps, do_cfg, use_apg):
  quant = model.regularizer.lookup(ids)
  x = model.sample_latents(quant, keep_k, noise, num_steps=num_steps,
                           guidance_scale=guidance_scale, do_cfg=do_cfg, use_apg=use_apg)
  return model.from_latents(x)
