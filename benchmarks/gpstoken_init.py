"""GPSToken's entropy initialisation, images/s: the zoo's numpy port against the official
`adaptive_initialize` (xtudbxk/GPSToken datasets/adaptivegps.py), one process, same images.

Both take the loader's grey [-1, 1] float32 256 x 256 tile of each golden photo
(tests/golden/gpstoken_images.py: six scikit-image photos and a flat image) and make N = 64,
128, 256 Gaussians; the script first checks that Gaussians and RoIs are identical, then times
--reps passes over the images, alternating the two, single-threaded (data-loader workers run
one per core). The official function needs its pins, so run this in that venv; the zoo's
module is numpy-only and is loaded from its file:

  python3.11 -m venv /tmp/refvenv
  /tmp/refvenv/bin/pip install numpy==1.26.4 opencv-python-headless==4.9.0.80 scikit-image
  OMP_NUM_THREADS=1 /tmp/refvenv/bin/python benchmarks/gpstoken_init.py \
      --official_repo /path/to/GPSToken
"""
import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def load_zoo():
  spec = importlib.util.spec_from_file_location(
      "gpstoken_init", ROOT / "models" / "image" / "gpstoken_init.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def load_official(repo: pathlib.Path):
  src = (repo / "datasets" / "adaptivegps.py").read_text()
  src = src.replace("from .base import ImagePaths", "ImagePaths = object").replace(
      "import torch\n", "")  # only the two functions are used
  namespace = {}
  exec(compile(src, "adaptivegps.py", "exec"), namespace)
  return namespace["adaptive_initialize"]


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--counts", default="64,128,256")
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--out", default=str(HERE / "results" / "gpstoken_init_cpu.jsonl"))
  args = p.parse_args()
  import cv2
  cv2.setNumThreads(1)
  sys.path.insert(0, str(ROOT / "tests" / "golden"))
  from gpstoken_images import golden_images
  zoo, official = load_zoo(), load_official(args.official_repo)
  greys = [zoo.grey_image(im.astype(np.float32) / 255.0) for im in golden_images().values()]
  out = open(args.out, "w")
  meta = {"meta": True, "date": datetime.date.today().isoformat(), "numpy": np.__version__,
          "opencv": cv2.__version__, "cpu": platform.processor() or platform.machine(),
          "cores": os.cpu_count(), "images": len(greys), "command": " ".join(sys.argv)}
  out.write(json.dumps(meta) + "\n")
  runs = {"zoo": lambda g, n: zoo.initial_gaussians(g, n),
          "official": lambda g, n: official(n, img=g, minhw=8, weight=2.5)}
  print(f"{'N':>5} {'zoo img/s':>10} {'official img/s':>15} {'speed-up':>9}")
  for n in (int(c) for c in args.counts.split(",")):
    for g in greys:  # identical outputs first
      (zg, zr), (og, orr) = runs["zoo"](g, n), runs["official"](g, n)
      if not (np.array_equal(zg, og) and np.array_equal(zr, orr)):
        raise SystemExit(f"outputs differ at N={n}")
    times = {k: [] for k in runs}
    for rep in range(args.reps):
      for k in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
        start = time.perf_counter()
        for g in greys:
          runs[k](g, n)
        times[k].append(time.perf_counter() - start)
    rate = {k: len(greys) / statistics.median(v) for k, v in times.items()}
    print(f"{n:>5} {rate['zoo']:>10.1f} {rate['official']:>15.1f} "
          f"{rate['zoo'] / rate['official']:>8.2f}x")
    out.write(json.dumps({"num_gaussians": n, "zoo_images_per_s": rate["zoo"],
                          "official_images_per_s": rate["official"],
                          "speedup": rate["zoo"] / rate["official"], "times": times}) + "\n")
  out.close()


if __name__ == "__main__":
  main()
