"""Dead-code re-anchoring of a VQ codebook (CVQ-VAE, as TA-TiTok's `clustering_vq`).

Every step, each code is pulled toward the feature of the batch nearest to it, strongly when
the code is rarely used (decay ~1) and not at all when it is used (decay ~0). Usage is an EMA
of per-code frequencies. Called on the global batch inside `jit`, so on a mesh it sees every
device's features without an explicit all-gather.
"""
import jax
import jax.numpy as jnp

from models.quantizers.vq import l2_normalize

USAGE_DECAY = 0.99


def reanchor_codebook(codebook, usage, features, ids, *, use_l2_norm: bool,
                      decay: float = USAGE_DECAY):
  """Returns (new codebook [K, D], new usage EMA [K]).

  features: the quantizer's input before any l2-normalisation, [N, D]; ids: their codes [N].
  """
  codebook = codebook.astype(jnp.float32)
  features = jax.lax.stop_gradient(features.reshape(-1, codebook.shape[1]).astype(jnp.float32))
  k = codebook.shape[0]
  frequency = jnp.bincount(ids.reshape(-1), length=k).astype(jnp.float32) / ids.size
  usage = decay * usage + (1.0 - decay) * frequency
  z, e = (l2_normalize(features), l2_normalize(codebook)) if use_l2_norm else (features, codebook)
  distances = (jnp.sum(z * z, axis=1, keepdims=True) + jnp.sum(e * e, axis=1)
               - 2.0 * jnp.einsum("nd,kd->nk", z, e, precision=jax.lax.Precision.HIGHEST))
  nearest_feature = features[jnp.argmin(distances, axis=0)]  # [K, D]
  pull = jnp.exp(-(usage * k * 10.0) / (1.0 - decay) - 1e-3)[:, None]
  return codebook * (1.0 - pull) + nearest_feature * pull, usage
