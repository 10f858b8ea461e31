"""Exponential moving average of the parameters (TiTok evaluates the EMA weights)."""
import jax


def update_ema(ema, params, decay: float):
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p.astype(e.dtype), ema, params)
