"""Adjustments to the seeded weights of the perceptual networks, shared by the golden script
and tests/test_perception.py (numpy only, so the golden venv can load it by path).

Plain seeded weights leave ConvNeXt's LayerNorm scales near 0.02 and VGG's deep features near
constant, which would make the parity checks weak: He gain for VGG and AlexNet convs,
non-negative LPIPS lin weights, LayerNorm scales near 1.
"""
import numpy as np


def tweak(family: str, state: dict) -> dict:
  out = {}
  for k, a in state.items():
    if family in ("vgg16", "alexnet") and a.ndim == 4:
      a = a * np.float32(np.sqrt(2.0))
    elif family == "lpips_lin":
      a = np.abs(a)
    elif family == "convnext_small" and k.endswith(".weight") and a.ndim == 1:
      a = 1.0 + np.float32(5.0) * a
    out[k] = a.astype(np.float32)
  return out
