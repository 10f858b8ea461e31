"""Training losses of the TiTok family (pixel L2 + VQ or KL terms)."""
import jax.numpy as jnp


def reconstruction_loss(out: dict, images, weights) -> tuple[jnp.ndarray, dict]:
  """Returns (scalar loss, scalar metrics) from a model's training forward `out`."""
  if "recon" not in out:
    raise ValueError("this model predicts proxy-code logits (stage 1); reconstruction losses "
                     "need a model that decodes to pixels")
  pixel_l2 = jnp.mean((out["recon"].astype(jnp.float32) - images) ** 2)
  loss = weights.pixel_l2 * pixel_l2
  metrics = {"pixel_l2": pixel_l2}
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
