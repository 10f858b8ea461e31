"""AdamW with TiTok's parameter grouping, warmup + cosine schedule and gradient clipping."""
import functools

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


def is_frozen(path, frozen) -> bool:
  """Whether a parameter sits under one of the `frozen` top-level modules (e.g. "encoder")."""
  return bool(path) and str(getattr(path[0], "key", path[0])) in frozen


def stop_frozen_gradients(params, frozen):
  """Frozen parameters as constants: no gradient, and XLA drops the backward pass into them."""
  if not frozen:
    return params
  return jax.tree_util.tree_map_with_path(
      lambda path, p: jax.lax.stop_gradient(p) if is_frozen(path, frozen) else p, params)


def learning_rate_schedule(config, peak=None) -> optax.Schedule:
  """Warmup + cosine (the default), or DAC's per-step exponential decay (`lr_decay`)."""
  if config.get("lr_schedule", "cosine") == "exponential":
    return optax.exponential_decay(config.learning_rate if peak is None else peak,
                                   transition_steps=1, decay_rate=config.lr_decay)
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate if peak is None else peak,
      warmup_steps=config.warmup_steps,
      decay_steps=max(config.total_steps, config.warmup_steps + 1),
      end_value=config.end_learning_rate)


def _group_labels(params, frozen, multipliers):
  def label(path, _):
    if is_frozen(path, frozen):
      return "frozen"
    top = str(getattr(path[0], "key", path[0])) if path else ""
    return f"lr_x:{top}" if top in multipliers else "trained"
  return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(config, *, learning_rate=None, frozen=(),
                   lr_multipliers=None) -> optax.GradientTransformation:
  """AdamW for the trained parameters; parameters under `frozen` modules get no update and no
  optimizer state (as `requires_grad_(False)` in the official stage 2). `lr_multipliers`
  ({top-level module: factor}, default `config.lr_multipliers`) scale the learning-rate schedule
  of those modules: LARP trains its prior at 50x (`prior_lr_mult`)."""
  # grad_clip_norm 0: no clipping (GPSToken's official Adam clips nothing).
  clip = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
  if lr_multipliers is None:
    lr_multipliers = dict(config.get("lr_multipliers", None) or {})
  schedule = learning_rate_schedule(config, learning_rate)

  def adamw(factor=1.0):
    lr = schedule if factor == 1.0 else (lambda step: factor * schedule(step))
    return optax.adamw(lr, b1=config.beta1, b2=config.beta2, weight_decay=config.weight_decay,
                       mask=decay_mask)

  if not frozen and not lr_multipliers:
    return optax.chain(*clip, adamw())
  groups = {"trained": adamw(), "frozen": optax.set_to_zero()}
  groups.update({f"lr_x:{k}": adamw(float(v)) for k, v in lr_multipliers.items()})
  # Clipping sees the whole gradient (as torch's clip_grad_norm_ over all parameters).
  return optax.chain(*clip, optax.multi_transform(groups, functools.partial(
      _group_labels, frozen=tuple(frozen), multipliers=dict(lr_multipliers))))
