"""Seeded weights and test photos of the FID InceptionV3, shared by the golden script, the tests
and the benchmark (numpy and scikit-image only, so the golden venv can load it by path).

zoo.convert.seeded gives conv weights of variance 1/fan_in and every BatchNorm vector 0.02 N
(running_var then half negative). Through ~50 conv layers that either dies out or, once a ReLU
halves the second moment at every layer, leaves the pool features nearly independent of the
image (measured: the two photos' pool features differed by 1e-4 of their size). With the He gain
and BatchNorm statistics near identity, the activations stay at mean ~0.5, std ~0.8 and about
half positive through Mixed_7c, and two photos' features differ by ~10%:
  conv weight   x sqrt(2)            bn.weight        1 + 0.1 N
  bn.bias       0.1 N                bn.running_mean  0.1 N
  bn.running_var exp(0.2 N) > 0      num_batches_tracked  0 (int64, as torch stores it)
The fc layer keeps the generic seeding (weights 1/sqrt(2048), bias 0.02 N).
"""
import numpy as np

# Golden features keep every 8th pool feature and logit (plus the norms of the full vectors):
# a few KB instead of 12 KB per image and reference.
FEATURE_STRIDE = 8


def tweak(state: dict) -> dict:
  out = {}
  for k, a in state.items():
    if k.endswith(".num_batches_tracked"):
      out[k] = np.zeros((), np.int64)
      continue
    if a.ndim == 4:
      a = a * np.float32(np.sqrt(2.0))
    elif k.endswith(".bn.weight"):
      a = 1.0 + np.float32(5.0) * a
    elif k.endswith(".bn.bias") or k.endswith(".bn.running_mean"):
      a = np.float32(5.0) * a
    elif k.endswith(".bn.running_var"):
      a = np.exp(np.float32(10.0) * a)
    out[k] = a.astype(np.float32)
  return out


def photo_cases() -> dict:
  """{case: uint8 [B, H, W, 3]} from scikit-image's bundled photos, cut by slicing only (no
  resize library, so the pixels cannot drift between versions): smaller than, larger than,
  not square, and exactly the network's 299x299."""
  from skimage import data
  astronaut, chelsea, coffee = data.astronaut(), data.chelsea(), data.coffee()
  return {
      "small_64": np.stack([astronaut[::8, ::8], coffee[8:392:6, 100:484:6]]),
      "medium_256": np.stack([astronaut[128:384, 128:384], coffee[72:328, 172:428]]),
      "chelsea_300x451": chelsea[None],
      "exact_299": chelsea[None, :299, 76:375],
  }
