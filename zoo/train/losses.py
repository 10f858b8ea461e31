"""Training losses of the TiTok family: pixel L2 + VQ or KL terms, and stage-1 proxy codes."""
import jax
import jax.numpy as jnp


def reconstruction_loss(out: dict, images, weights) -> tuple[jnp.ndarray, dict]:
  """Returns (scalar loss, scalar metrics) from a model's training forward `out`.

  Pixel L2 on `out["recon"]` (unless its weight is 0), pixel L1 (`weights.pixel_l1`, LARP's
  reconstruction term; 0 when the config does not name it), the quantizer / KL terms, and every
  loss the model names in `out["losses"]` (a flow-matching loss, a halting loss, ...),
  weighted by `weights.<name>` (1 when the config does not name it).
  """
  loss = jnp.zeros((), jnp.float32)
  metrics = {}
  if weights.pixel_l2:
    if "recon" not in out:
      raise ValueError("pixel_l2 needs a model that decodes to pixels in training; this one "
                       f"returns {sorted(out)} (stage-1 logits or a model-defined loss: set "
                       "loss.pixel_l2=0)")
    pixel_l2 = jnp.mean((out["recon"].astype(jnp.float32) - images) ** 2)
    loss += weights.pixel_l2 * pixel_l2
    metrics["pixel_l2"] = pixel_l2
  if weights.get("pixel_l1", 0.0):
    pixel_l1 = jnp.mean(jnp.abs(out["recon"].astype(jnp.float32) - images))
    loss += weights.pixel_l1 * pixel_l1
    metrics["pixel_l1"] = pixel_l1
  for name, value in out.get("losses", {}).items():
    loss += weights.get(name, 1.0) * value
    metrics[name] = value
  metrics.update(out.get("stats", {}))
  if "quantizer_loss" in out:
    loss += weights.quantizer * out["quantizer_loss"]
    metrics.update({k: out[k] for k in ("quantizer_loss", "commitment_loss", "codebook_loss",
                                        "codebook_usage", "codebook_perplexity")})
  if "kl" in out:
    kl = jnp.mean(out["kl"])
    loss += weights.kl * kl
    metrics["kl"] = kl
  metrics["loss"] = loss
  return loss, metrics


def proxy_code_loss(out: dict, proxy_ids, weights) -> tuple[jnp.ndarray, dict]:
  """TiTok stage 1: cross-entropy of the legacy head's 1024-way logits against the frozen
  MaskGIT-VQGAN's codes of the same image, plus the quantizer loss."""
  if "logits" not in out:
    raise ValueError("the proxy-code objective needs a stage-1 model (legacy head without the "
                     "pixel decoder, finetune_decoder=False)")
  logits = out["logits"].astype(jnp.float32)
  logits = logits.reshape(logits.shape[0], -1, logits.shape[-1])
  if logits.shape[1] != proxy_ids.shape[1]:
    raise ValueError(f"{logits.shape[1]} logit positions but {proxy_ids.shape[1]} proxy codes: "
                     "the model's grid must equal the teacher's (image_size / 16)")
  ce = per_image_cross_entropy(logits, proxy_ids).mean()
  loss = ce + weights.quantizer * out["quantizer_loss"]
  metrics = {"loss": loss, "proxy_ce": ce,
             "proxy_accuracy": jnp.mean(jnp.argmax(logits, -1) == proxy_ids)}
  metrics.update({k: out[k] for k in ("quantizer_loss", "codebook_usage", "codebook_perplexity")})
  return loss, metrics


def per_image_cross_entropy(logits, ids):
  """logits [B, N, C], ids [B, N] -> mean cross-entropy per image [B]."""
  picked = jnp.take_along_axis(logits, ids[..., None], axis=-1)[..., 0]
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked, axis=1)
