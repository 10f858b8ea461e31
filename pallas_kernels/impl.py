"""Which implementation a kernel runs: one rule for the whole zoo.

A call's `impl` argument wins; otherwise `set_default_impl` (from a config), then the
`ZOO_KERNEL_IMPL` environment variable; otherwise None, and the kernel's dispatcher picks by
platform and shape.

The choice is made when a function is traced, so jitted functions compiled earlier would keep
their old kernels: changing the zoo default therefore clears JAX's compilation caches. Set the
environment variable before the process starts.
"""
import contextlib
import os

import jax

IMPLS = ("xla", "pallas", "interpret", "cudnn")
ENV_VAR = "ZOO_KERNEL_IMPL"

_default_impl = None


def _check(impl):
  if impl is not None and impl not in IMPLS:
    raise ValueError(f"unknown kernel impl {impl!r}; expected one of {IMPLS} or None")
  return impl


def set_default_impl(impl) -> None:
  """Sets the zoo-wide implementation (None restores automatic choice)."""
  global _default_impl
  if _check(impl) != _default_impl:
    _default_impl = impl
    jax.clear_caches()  # retrace: compiled functions hold the kernels chosen at trace time


@contextlib.contextmanager
def default_impl(impl):
  """Context manager form of `set_default_impl`, restoring the previous value on exit."""
  previous = _default_impl
  set_default_impl(impl)
  try:
    yield
  finally:
    set_default_impl(previous)


def requested_impl(impl=None, *, supported=IMPLS):
  """The implementation asked for (argument, zoo default, environment), or None for automatic.

  Raises if it is not one the kernel supports, naming the kernel's choices.
  """
  impl = _check(impl) or _default_impl or _check(os.environ.get(ENV_VAR) or None)
  if impl is not None and impl not in supported:
    raise ValueError(f"impl {impl!r} is not available for this kernel; choose from {supported}")
  return impl
