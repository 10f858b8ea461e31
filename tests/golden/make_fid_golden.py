"""Golden FID and Inception Score numbers from the reference implementations.

  - pytorch-fid's `calculate_frechet_distance` on small seeded statistics, including a singular
    product (the eps retry) and a pair whose square root is complex (an error);
  - torch-fidelity's `isc_features_to_metric` (the IS of `calculate_metrics(isc=True)`) on
    seeded 1008-way logits, with its default shuffle (seed 2020) and without;
  - TiTok's `VQGANEvaluator` (evaluator/evaluator.py of github.com/bytedance/1d-tokenizer) fed the
    same features and logits batch by batch through a stand-in Inception: its streaming rFID and
    its one-split Inception Score.
Features and logits come from tests/golden/eval_seeding.py; nothing is downloaded, no reference
code is copied. pytorch-fid and torch-fidelity are not installed: their wheels are unpacked and
put on PYTHONPATH (they need only torch, numpy, scipy, pillow):

  pip download --no-deps pytorch-fid==0.3.0 torch-fidelity==0.4.0 -d /tmp/fidwheels
  (cd /tmp/fidsrc && for w in /tmp/fidwheels/*.whl; do python3 -m zipfile -e $w .; done)
  PYTHONPATH=/tmp/fidsrc /tmp/percvenv/bin/python tests/golden/make_fid_golden.py \
      --official_repo /tmp/official/1d-tokenizer

Writes fid_is.npz next to this file: per FID case `{case}_mu1, _sigma1, _mu2, _sigma2` (float64)
and `{case}_fid` (NaN where pytorch-fid raised); `is_mean`, `is_std` (torch-fidelity defaults),
`is_mean_noshuffle`, `is_std_noshuffle`; `titok_rfid`, `titok_is`.
"""
import argparse
import pathlib
import sys

import numpy as np
import torch

from golden_common import load_module

HERE = pathlib.Path(__file__).resolve().parent
FEATURE_DIM = 32
IS_IMAGES = 1003  # not a multiple of the 10 splits
TITOK_BATCH = 100


def fid_cases(seeding):
  a = seeding.features(1, 300, FEATURE_DIM).astype(np.float64)
  b = seeding.features(2, 200, FEATURE_DIM).astype(np.float64) * 1.1 + 0.05
  few_a = seeding.features(3, 20, FEATURE_DIM).astype(np.float64)  # N < D: singular
  few_b = seeding.features(4, 20, FEATURE_DIM).astype(np.float64)
  stats = lambda x: (x.mean(0), np.cov(x, rowvar=False))
  nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])  # sqrtm has no finite value: eps retry
  return {
      "random": (*stats(a), *stats(b)),
      "same": (*stats(a), *stats(a)),
      "rank_deficient": (*stats(few_a), *stats(few_b)),
      "singular": (np.array([0.1, -0.2]), nilpotent, np.array([0.3, 0.0]), np.eye(2)),
      "imaginary": (np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2)),
  }


class StandInInception:
  """Returns the next batch's features and logits whatever the images (TiTok calls it on the
  reconstructions first, then on the originals), in float64 as TiTok's extractor does."""

  def __init__(self, fake, real, logits):
    self.queue = []
    for i in range(0, len(fake), TITOK_BATCH):
      s = slice(i, i + TITOK_BATCH)
      self.queue += [{"2048": torch.from_numpy(fake[s]).double(),
                      "logits_unbiased": torch.from_numpy(logits[s]).double()},
                     {"2048": torch.from_numpy(real[s]).double(),
                      "logits_unbiased": torch.from_numpy(logits[s]).double()}]

  def __call__(self, images):
    assert images.dtype == torch.uint8
    return self.queue.pop(0)


def titok_numbers(repo, real, fake, logits):
  sys.path.insert(0, str(repo))
  from evaluator.evaluator import VQGANEvaluator
  ev = VQGANEvaluator("cpu", enable_rfid=False, enable_inception_score=False)
  # What __init__ sets when Inception is enabled, with our feature size and no download.
  ev._enable_rfid = ev._enable_inception_score = True
  ev._rfid_num_features, ev._is_num_features = FEATURE_DIM, logits.shape[1]
  ev.reset_metrics()
  ev._inception_model = StandInInception(fake, real, logits)
  images = torch.zeros(TITOK_BATCH, 3, 8, 8)
  for _ in range(0, len(fake), TITOK_BATCH):
    ev.update(images, images)
  out = ev.result()
  return float(out["rFID"]), float(out["InceptionScore"])


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official_repo", required=True, type=pathlib.Path)
  p.add_argument("--out_dir", type=pathlib.Path, default=HERE)
  args = p.parse_args()
  from pytorch_fid.fid_score import calculate_frechet_distance
  from torch_fidelity.metric_isc import isc_features_to_metric
  seeding = load_module("eval_seeding", HERE / "eval_seeding.py")

  out = {}
  for case, (mu1, sigma1, mu2, sigma2) in fid_cases(seeding).items():
    try:
      value = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    except ValueError as e:
      print(f"{case}: pytorch-fid raised {e}")
      value = float("nan")
    out.update({f"{case}_mu1": mu1, f"{case}_sigma1": sigma1, f"{case}_mu2": mu2,
                f"{case}_sigma2": sigma2, f"{case}_fid": np.float64(value)})

  logits = seeding.logits(7, IS_IMAGES)
  for suffix, shuffle in (("", True), ("_noshuffle", False)):
    isc = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=shuffle,
                                 rng_seed=2020)
    out[f"is_mean{suffix}"] = np.float64(isc["inception_score_mean"])
    out[f"is_std{suffix}"] = np.float64(isc["inception_score_std"])

  n = 1000  # whole TiTok batches
  real = seeding.features(5, n, FEATURE_DIM)
  fake = seeding.features(6, n, FEATURE_DIM)
  out["titok_rfid"], out["titok_is"] = map(np.float64, titok_numbers(
      args.official_repo.resolve(), real, fake, logits[:n]))

  np.savez_compressed(args.out_dir / "fid_is.npz", **out)
  print({k: float(v) for k, v in out.items() if np.ndim(v) == 0})


if __name__ == "__main__":
  main()
