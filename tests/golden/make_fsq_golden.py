"""Golden outputs of FlexTok's FSQ (flextok/regularizers/quantize_fsq.py) for tests/test_fsq.py.

Run in a venv with torch and einops (the official module needs nothing else), e.g.
  python3.11 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch==2.13.0 einops numpy
  git clone https://github.com/apple/ml-flextok /tmp/official/ml-flextok
  /tmp/refvenv/bin/python tests/golden/make_fsq_golden.py --official_repo /tmp/official/ml-flextok
Writes tests/golden/fsq.npz: inputs z (normal, scaled up so that the bounds matter, plus exact
half-level ties), the quantized codes, the ids and the codes of every 997th id.
"""
import argparse
import importlib
import pathlib
import sys
import types

import numpy as np

from golden_common import ROOT

LEVELS = [8, 8, 8, 5, 5, 5]


def load_official_fsq(repo: pathlib.Path):
  """flextok.regularizers.quantize_fsq without flextok.model's package imports (hydra, ...)."""
  sys.path.insert(0, str(repo))
  for name, path in (("flextok", "flextok"), ("flextok.model", "flextok/model"),
                     ("flextok.model.utils", "flextok/model/utils"),
                     ("flextok.regularizers", "flextok/regularizers")):
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(repo / path)]
    sys.modules[name] = pkg
  return importlib.import_module("flextok.regularizers.quantize_fsq").FSQ


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  args = parser.parse_args()
  import torch
  fsq = load_official_fsq(args.official_repo)("z", "q", "t", LEVELS, packed_call=False).eval()
  rng = np.random.default_rng(0)
  z = (rng.standard_normal((64, 6)) * 2.0).astype(np.float32)
  z[:4] = 0.0  # the rounding of exact zeros at the even-level offset
  with torch.no_grad():
    quant, tokens = fsq.forward_z(torch.from_numpy(z))
    some_ids = torch.arange(0, fsq.codebook_size, 997)
    codes = fsq.indices_to_embedding(some_ids)
  out = ROOT / "tests" / "golden" / "fsq.npz"
  np.savez(out, z=z, quant=quant.numpy(), ids=tokens.numpy().astype(np.int64),
           some_ids=some_ids.numpy(), codes=codes.numpy())
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
