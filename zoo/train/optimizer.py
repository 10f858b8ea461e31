"""AdamW with TiTok's parameter grouping, warmup + cosine schedule and gradient clipping."""
import jax
import optax

# TiTok (utils/train_utils.py: create_optimizer): no weight decay for 1-D parameters or for
# names holding any of these substrings (this also exempts patch_embed and the codebooks).
NO_DECAY_SUBSTRINGS = ("ln", "bias", "latent_tokens", "mask_token", "embedding", "norm",
                       "gamma", "embed")


def path_name(path) -> str:
  return ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def decay_mask(params):
  """True where weight decay applies."""
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim >= 2 and not any(s in path_name(path) for s in NO_DECAY_SUBSTRINGS),
      params)


def learning_rate_schedule(config) -> optax.Schedule:
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
      decay_steps=max(config.total_steps, config.warmup_steps + 1),
      end_value=config.end_learning_rate)


def make_optimizer(config) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(config.grad_clip_norm),
      optax.adamw(learning_rate_schedule(config), b1=config.beta1, b2=config.beta2,
                  weight_decay=config.weight_decay, mask=decay_mask))
