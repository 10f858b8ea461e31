"""Reconstruction evaluation: PSNR, SSIM and codebook usage over a dataset, plus a grid."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from zoo.evals.codebook import CodebookUsage
from zoo.evals.grid import save_recon_grid
from zoo.evals.image_metrics import psnr, ssim
from zoo.evals.mean_metrics import MeanMetrics

_metrics = jax.jit(lambda a, b: (psnr(a, b), ssim(a, b)))


def evaluate_reconstruction(model, batches, *, out_dir, num_batches=None) -> dict:
  """Encodes and decodes every batch of {"image", "mask"?}; returns means and writes
  `<out_dir>/results.json` and `<out_dir>/recon_grid.png` (originals above reconstructions)."""
  out_dir = pathlib.Path(out_dir)
  means = MeanMetrics()
  quantize = getattr(model, "quantize", None)
  usage = CodebookUsage(quantize.codebook_size) if quantize is not None else None
  grid = None
  for batch in tqdm.tqdm(batches, total=num_batches, desc="eval", dynamic_ncols=True):
    keep = batch.get("mask", np.ones(len(batch["image"]), bool))
    images = jnp.asarray(batch["image"])
    tokens = model.encode(images)
    recon = model.decode(tokens)
    p, s = _metrics(images, recon)
    means.update(psnr=np.asarray(p)[keep], ssim=np.asarray(s)[keep])
    if usage is not None:
      usage.update(np.asarray(tokens)[keep])
    if grid is None:
      grid = save_recon_grid(out_dir / "recon_grid.png", np.asarray(images)[keep],
                             np.asarray(recon)[keep])
  results = {**means.result(), "num_images": int(means.counts.get("psnr", 0))}
  if usage is not None:
    results.update(usage.result())
  (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
  return results
