"""A trained tiny One-D-Piece for tests/test_adaptive_length.py (a halting head needs a base whose
reconstructions improve with the tokens kept; training one takes ~10-30 minutes on 2 cores, too
long for every test run). Our own weights, trained on the built-in photos:

  python train.py --config zoo/configs/one_d_piece.py:tiny --workdir /tmp/odp --config.total_steps=3000
  python tests/golden/make_one_d_piece_tiny_base.py --workdir /tmp/odp

Writes tests/golden/one_d_piece_tiny_base.safetensors: the run's EMA parameters by their NNX
paths, stored as float16 (half the size; the test upcasts and uses them as they are).
"""
import argparse
import pathlib

import numpy as np
from flax import nnx
from safetensors.numpy import save_file

from zoo.train.train_state import load_trained_model

OUT = pathlib.Path(__file__).parent / "one_d_piece_tiny_base.safetensors"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", required=True)
  args = parser.parse_args()
  model = load_trained_model(args.workdir, weights="ema")
  tensors = {".".join(map(str, path)): np.asarray(var[...], np.float16)
             for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  save_file(tensors, str(OUT), metadata={"model": model.config.__class__.__name__,
                                         "source": "one_d_piece.py:tiny, 3000 steps, EMA"})
  print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors)")


if __name__ == "__main__":
  main()
