"""Golden initial Gaussians from the official GPSToken `adaptive_initialize`.

Run outside the repo's venv, with the official pins numpy==1.26.4 and
opencv-python-headless==4.9.0.80 and a checkout of xtudbxk/GPSToken:
  python tests/golden/make_gpstoken_init_golden.py /path/to/GPSToken
Writes tests/golden/gpstoken_init.npz: for each image and token count, the uint8 image,
the Gaussians and the RoIs.
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.golden.gpstoken_images import golden_images  # noqa: E402

COUNTS = (64, 128, 256)


def main(official_dir):
  src = (pathlib.Path(official_dir) / "datasets" / "adaptivegps.py").read_text()
  # Only the two functions are needed: drop the dataset class's imports.
  src = src.replace("from .base import ImagePaths", "ImagePaths = object").replace(
      "import torch\n", "")
  official = {}
  exec(compile(src, "adaptivegps.py", "exec"), official)
  out = {}
  for name, image in golden_images().items():
    img = (image / 127.5 - 1.0).astype(np.float32)  # datasets/base.py
    grey = 0.299 * img[:, :, 0] + 0.587 * img[:, :, 1] + 0.114 * img[:, :, 2]
    out[f"{name}/image"] = image
    for n in COUNTS:
      g, r = official["adaptive_initialize"](n, img=grey, minhw=8, weight=2.5)
      out[f"{name}/{n}/gaussians"], out[f"{name}/{n}/rois"] = g, r
  np.savez_compressed(pathlib.Path(__file__).with_name("gpstoken_init.npz"), **out)


if __name__ == "__main__":
  main(sys.argv[1])
