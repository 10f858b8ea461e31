"""Test setup, before JAX starts: 8 fake CPU devices for the sharding tests, and one persistent
compilation cache for the whole run (a fresh directory, shared by the xdist workers and the
subprocesses they start), so that the many runs of the same tiny models (resumed training,
eval.py on a run) compile each program once."""
import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The controller imports this first; the workers and subprocesses inherit the variables.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="zoo-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def pytest_collection_modifyitems(items):
  """The long training checks first (a stable sort), so that with --dist loadfile the two
  workers start on them and the many short modules fill in behind."""
  items.sort(key=lambda item: item.get_closest_marker("training") is None)
