"""Evaluate a video tokenizer's reconstructions: PSNR, SSIM and LPIPS per frame, rFVD, codebook
usage, on clips [B, T, H, W, 3] in [0, 1].

Clips go through the public API, `model.decode(model.encode(clip))`, so the numbers measure
exactly what a user of the tokens gets. PSNR is per clip (the clip-wide MSE, as LARP's
evaluator); SSIM and LPIPS are per frame, averaged per clip; every metric is then averaged over
clips. rFVD compares the I3D statistics of the originals with those of the reconstructions
(zoo/evals/fvd.py; clips need >= 9 frames). Writes results.json, side_by_side.mp4 and .gif (the
first clips, original | reconstruction) and frames.png (the first clip's frames in two rows).
"""
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import tqdm

from zoo.data import write_video
from zoo.evals.codebook import CodebookUsage
from zoo.evals.fvd import FVDFeatures, check_clips
from zoo.evals.fid import frechet_distance
from zoo.evals.grid import save_recon_grid
from zoo.evals.image_metrics import ssim
from zoo.evals.mean_metrics import MeanMetrics

METRICS = ("psnr", "ssim", "lpips", "rfvd", "usage")


def check_metrics(metrics, *, lpips=None, i3d=None) -> tuple[str, ...]:
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown:
    raise ValueError(f"unknown video metrics {unknown}; choose from {', '.join(METRICS)}")
  if "lpips" in metrics and lpips is None:
    raise ValueError("the lpips metric needs an LPIPS network (--lpips_checkpoint)")
  if "rfvd" in metrics and i3d is None:
    raise ValueError("the rfvd metric needs the I3D (--i3d_checkpoint i3d_pretrained_400.pt)")
  return tuple(metrics)


def _frames(v):
  return v.reshape(-1, *v.shape[2:])


def clip_psnr(video, recon):
  """PSNR (dB) per clip [B] of the clip-wide mean squared error, for values in [0, 1]."""
  mse = jnp.mean((video.astype(jnp.float32) - recon.astype(jnp.float32)) ** 2, axis=(1, 2, 3, 4))
  return -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))


def clip_ssim(video, recon):
  """SSIM per clip [B]: the mean of the per-frame SSIMs."""
  b, t = video.shape[:2]
  return ssim(_frames(video), _frames(recon)).reshape(b, t).mean(axis=1)


def clip_metrics(video, recon, metrics, lpips=None) -> dict:
  """Per-clip values [B] of the frame metrics."""
  b, t = video.shape[:2]
  out = {}
  if "psnr" in metrics:
    out["psnr"] = clip_psnr(video, recon)
  if "ssim" in metrics:
    out["ssim"] = clip_ssim(video, recon)
  if "lpips" in metrics:
    out["lpips"] = jnp.asarray(lpips(_frames(video), _frames(recon))).reshape(b, t).mean(axis=1)
  return {k: np.asarray(v) for k, v in out.items()}


def save_examples(video, recon, *, videos=(), frames=None, fps: float = 8.0,
                  max_clips: int = 4):
  """The first clips, original | reconstruction side by side and one after another, to each
  path of `videos` (.mp4 / .gif); the first clip's frames (originals above) to `frames`."""
  pairs = np.concatenate([video[:max_clips], recon[:max_clips]], axis=3)
  pairs = pairs.reshape(-1, *pairs.shape[2:])
  for path in videos:
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_video(path, pairs, fps=fps)
  if frames is not None:
    pathlib.Path(frames).parent.mkdir(parents=True, exist_ok=True)
    save_recon_grid(frames, video[0], recon[0], max_images=len(video[0]))


def evaluate_video(model, batches, *, out_dir, results_path=None,
                   metrics=("psnr", "ssim", "usage"), lpips=None, i3d=None,
                   fvd_resize: str = "styleganv", info=None) -> dict:
  """Evaluates `model` on an iterable of clip batches (float [B, T, H, W, 3] in [0, 1])."""
  metrics = check_metrics(metrics, lpips=lpips, i3d=i3d)
  means = MeanMetrics()
  codebook = getattr(model.config, "codebook_size", None)
  discrete = (getattr(model.config, "regularizer", "vq") == "vq"
              and not getattr(model.config, "use_vae", False))
  usage = CodebookUsage(codebook) if "usage" in metrics and codebook and discrete else None
  fvd_real = fvd_fake = None
  if "rfvd" in metrics:
    fvd_real, fvd_fake = (FVDFeatures(i3d, resize=fvd_resize) for _ in range(2))
  count, saved = 0, False
  for video in tqdm.tqdm(batches, desc="eval", unit="batch"):
    video = np.asarray(video, np.float32)
    if "rfvd" in metrics:
      check_clips(video)
    tokens = model.encode(video)
    recon = np.asarray(model.decode(tokens, frames=video.shape[1]), np.float32)
    means.update(clip_metrics(jnp.asarray(video), jnp.asarray(recon), metrics, lpips))
    if usage is not None:
      usage.update(np.asarray(tokens))
    if fvd_real is not None:
      fvd_real.update(video)
      fvd_fake.update(recon)
    if not saved:
      out = pathlib.Path(out_dir)
      save_examples(video, recon, videos=(out / "side_by_side.mp4", out / "side_by_side.gif"),
                    frames=out / "frames.png")
      saved = True
    count += len(video)
  if not count:
    raise ValueError("no clips to evaluate")
  results = {"num_clips": count, **means.result(), **(info or {})}
  if usage is not None:
    results.update(usage.result())
  if fvd_real is not None:
    if count < 2:
      raise ValueError("rFVD needs at least two clips (a covariance)")
    real, fake = fvd_real.statistics(), fvd_fake.statistics()
    results["rfvd"] = frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)
  if results_path is not None:
    results_path = pathlib.Path(results_path)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
  return results
