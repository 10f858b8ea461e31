"""Counting XLA compilations: flexible-length decoding must compile once for every length."""
import contextlib

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations():
  """Yields a list that gets one entry per backend compilation inside the block."""
  compiles = []

  def listener(event, duration, **kwargs):
    if event == BACKEND_COMPILE:
      compiles.append(event)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield compiles
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
