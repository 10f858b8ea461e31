"""TiTok's perceptual loss (modeling/modules/perceptual_loss.py) on the zoo's frozen networks.

The official `PerceptualLoss(model_name)` modes, as `weights` here:
  "lpips"                 {"lpips": 1}     LPIPS-VGG, mean over the batch
  "convnext_s"            {"convnext": 1}  MSE of ConvNeXt-S ImageNet logits, mean over B x 1000
  "lpips-convnext_s-A-B"  {"lpips": A, "convnext": B}: (A * lpips + B * convnext) / (A + B)
GPSToken's "FID perceptual" loss is the weight key "fid": MSE of the FID Inception's 2048-d pool
features, with the official input scaling 255 * (x + 1) of [-1, 1] images (0..510, twice the
pixel range) before the network's TF1 resize to 299 and (x - 128) / 128, the Inception in eval
mode. "a+b" modes sum plain terms, e.g. "lpips+fid" = (lpips + fid) / 2 (GPSToken's outer
weight 2 gives its lpips + fid).
For ConvNeXt both images are resized to 224x224 (bilinear, antialias, align_corners=False) and
normalised with the ImageNet mean/std; LPIPS sees them at their own size. TiTok stage 2 uses
"convnext_s" at perceptual_weight 0.1, TA-TiTok "lpips-convnext_s-1.0-0.1" at 1.1; that outer
weight is the caller's. The official code detaches nothing (its targets need no gradient); here
the target is wrapped in stop_gradient, which gives the same gradient for the reconstruction.

jax.image.resize(bilinear, antialias) against torch's F.interpolate(antialias=True): max |diff|
2.4e-7 for 256 -> 224 (TiTok's case), 1.8e-6 for 64 -> 224 upsampling, up to 1.4e-5 at ratios
such as 300 -> 224, where torch's own float32 weights are that far from its float64 result.

Pass `nets` into jitted steps as arguments (nnx.jit / split state), not as closed-over
constants, or their ~65M weights get baked into the compiled program.
"""
import jax
import jax.numpy as jnp

from models.perception.inception import INPUT_SIZE, resize_tf1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONVNEXT_SIZE = 224
NETS = {"lpips": "lpips_vgg", "convnext": "convnext_s_imagenet",
        "fid": "inception_fid"}  # weight key -> registry name
_PLAIN = {"lpips": "lpips", "convnext_s": "convnext", "fid": "fid"}  # mode name -> weight key
FID_INPUT_SCALE = 510.0  # GPSToken: 255 * (x + 1) for x in [-1, 1], i.e. 510 * [0, 1] images


def parse_mode(name: str) -> dict[str, float]:
  """An official `perceptual_loss` config string -> {"lpips": w, "convnext": w, "fid": w}."""
  if "+" in name:
    parts = name.split("+")
    if any(p not in _PLAIN for p in parts) or len(set(parts)) != len(parts):
      raise ValueError(f"perceptual loss {name!r}: '+' joins distinct plain modes from "
                       f"{sorted(_PLAIN)}, e.g. 'lpips+fid'")
    return {_PLAIN[p]: 1.0 for p in parts}
  if name == "fid":
    return {"fid": 1.0}
  has_lpips, has_convnext = "lpips" in name, "convnext_s" in name
  if not (has_lpips or has_convnext):
    raise ValueError(f"unknown perceptual loss {name!r}: expected 'lpips', 'convnext_s' or "
                     "'lpips-convnext_s-<lpips weight>-<convnext weight>'")
  if not (has_lpips and has_convnext):
    return {"lpips": 1.0} if has_lpips else {"convnext": 1.0}
  try:  # the official parse: the last two '-'-separated fields
    a, b = (float(v) for v in name.split("-")[-2:])
  except ValueError:
    raise ValueError(f"perceptual loss {name!r}: the last two '-' fields must be the LPIPS and "
                     "ConvNeXt weights, e.g. 'lpips-convnext_s-1.0-0.1'") from None
  return {"lpips": a, "convnext": b}


def load_nets(weights, checkpoints: dict) -> dict:
  """The pretrained networks `weights` needs; `checkpoints` maps "lpips"/"convnext" to paths."""
  from zoo import registry
  weights = parse_mode(weights) if isinstance(weights, str) else dict(weights)
  return {k: registry.from_pretrained(NETS[k], checkpoints.get(k)) for k in weights}


def imagenet_logits(convnext, images):
  """ConvNeXt logits of NHWC [0, 1] images, preprocessed as TiTok's loss does."""
  b, h, w, c = images.shape
  if (h, w) != (CONVNEXT_SIZE, CONVNEXT_SIZE):
    images = jax.image.resize(images, (b, CONVNEXT_SIZE, CONVNEXT_SIZE, c), "bilinear",
                              antialias=True)
  return convnext((images - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD))


def fid_perceptual_features(inception, images):
  """GPSToken's FIDPerceptual input: [0, 1] NHWC -> Inception pool features [B, 2048]."""
  x = images.astype(jnp.float32) * FID_INPUT_SCALE
  if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
    x = resize_tf1(x)
  return inception.pool_features((x - 128.0) / 128.0)


def perceptual_loss(recon, target, nets: dict, weights) -> tuple[jnp.ndarray, dict]:
  """(scalar loss, metrics) for NHWC images in [0, 1]; `weights` is a mode string or a dict."""
  weights = parse_mode(weights) if isinstance(weights, str) else dict(weights)
  unknown = sorted(set(weights) - set(NETS))
  if unknown or not weights or sum(weights.values()) <= 0:
    raise ValueError(f"perceptual loss weights {weights}: use keys {sorted(NETS)} with a "
                     "positive sum")
  missing = sorted(k for k in weights if k not in nets)
  if missing:
    raise ValueError(f"perceptual loss needs nets {missing} (see load_nets)")
  recon = jnp.asarray(recon, jnp.float32)
  target = jax.lax.stop_gradient(jnp.asarray(target, jnp.float32))
  if recon.shape != target.shape:
    raise ValueError(f"recon {recon.shape} and target {target.shape} differ in shape")
  metrics, total = {}, 0.0
  if weights.get("lpips", 0.0):
    metrics["lpips"] = jnp.mean(nets["lpips"](target, recon))
    total += weights["lpips"] * metrics["lpips"]
  if weights.get("convnext", 0.0):
    # Two passes, not one over the concatenated batch: the backward then runs through the
    # reconstructions only (1.2 s of a 5.3 s ConvNeXt step at batch 4, 256 px, CPU).
    target_logits = jax.lax.stop_gradient(imagenet_logits(nets["convnext"], target))
    recon_logits = imagenet_logits(nets["convnext"], recon)
    metrics["convnext_mse"] = jnp.mean(jnp.square(recon_logits - target_logits))
    total += weights["convnext"] * metrics["convnext_mse"]
  if weights.get("fid", 0.0):
    target_feats = jax.lax.stop_gradient(fid_perceptual_features(nets["fid"], target))
    metrics["fid_perceptual"] = jnp.mean(jnp.square(
        fid_perceptual_features(nets["fid"], recon) - target_feats))
    total += weights["fid"] * metrics["fid_perceptual"]
  loss = total / sum(weights.values())
  metrics["perceptual"] = loss
  return loss, metrics
