"""Evaluate an audio codec's reconstructions: mel and STFT distances, SI-SDR, codebook usage,
bitrate, and PESQ / STOI when their packages are installed.

Writes results.json, the first clips as original/reconstruction WAV pairs (clips/) and their
spectrograms (spectrograms.png). `evaluate_audio_levels` repeats the evaluation for several
numbers of residual levels (the codec's bitrates) and writes levels.{jsonl,md,png}.
"""
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx

from zoo.data import write_wav
from zoo.evals import audio_metrics
from zoo.evals.spectrogram import save_spectrogram_pair

DEVICE_METRICS = ("mel_distance", "stft_distance", "si_sdr")
HOST_METRICS = ("pesq", "stoi")  # numpy packages, per clip on the host
METRICS = DEVICE_METRICS + HOST_METRICS + ("usage",)
LOWER_IS_BETTER = ("mel_distance", "stft_distance")


@functools.partial(jax.jit, static_argnames=("graph", "num_levels"))
def _reconstruct(state, audio, *, graph, num_levels):
  model = nnx.merge(graph, state)
  out = model(audio, train=False, num_levels=num_levels)
  recon = jnp.clip(out["recon"].astype(jnp.float32), -1.0, 1.0)
  rate = model.config.sample_rate
  values = {"mel_distance": audio_metrics.mel_distance(audio, recon, rate),
            "stft_distance": audio_metrics.stft_distance(audio, recon),
            "si_sdr": audio_metrics.si_sdr(audio, recon)}
  return recon, out["ids"], values


def _level_ids(ids) -> list[np.ndarray]:
  """ids [B, T, L] or a tuple of [B, T_l] (multi-scale) -> one flat array per level."""
  if isinstance(ids, (tuple, list)):
    return [np.asarray(x).reshape(-1) for x in ids]
  ids = np.asarray(ids)
  return [ids[..., i].reshape(-1) for i in range(ids.shape[-1])]


def check_metrics(metrics) -> tuple[str, ...]:
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown:
    raise ValueError(f"unknown audio metrics {unknown}; choose from {', '.join(METRICS)}")
  available = audio_metrics.optional_metrics_available()
  missing = [m for m in metrics if m in HOST_METRICS and not available.get(m, False)]
  if missing:
    raise ValueError(f"{missing} need their packages: pip install "
                     + " ".join({"pesq": "pesq", "stoi": "pystoi"}[m] for m in missing))
  return tuple(metrics)


def evaluate_audio(model, batches, *, out_dir, metrics=("mel_distance", "stft_distance",
                                                        "si_sdr", "usage"),
                   num_levels: int | None = None, num_saved: int = 4, num_batches=None,
                   results_path=None, info=None) -> dict:
  """Evaluates `model` on `batches` of {"audio": float [B, T, C] in [-1, 1], "mask": [B]}.

  Returns {metric: mean over clips, "bitrate_kbps", "num_levels", "num_clips"}, and
  "codebook_usage" (fraction of codes used, averaged over levels) with "usage".
  """
  metrics = check_metrics(metrics)
  levels = model.num_levels if num_levels is None else int(num_levels)
  if not 1 <= levels <= model.num_levels:
    raise ValueError(f"num_levels must be in 1..{model.num_levels}, got {num_levels}")
  rate = model.config.sample_rate
  out_dir = pathlib.Path(out_dir)
  graph, state = nnx.split(model)
  sums = {m: 0.0 for m in metrics if m != "usage"}
  counts = None
  num_clips = saved = 0
  for batch in tqdm.tqdm(batches, total=num_batches, desc=f"eval {levels} levels",
                         dynamic_ncols=True, disable=jax.process_index() != 0):
    audio = np.asarray(batch["audio"], np.float32)
    keep = np.asarray(batch.get("mask", np.ones(len(audio), bool)), bool)
    recon, ids, values = jax.device_get(_reconstruct(state, audio, graph=graph,
                                                     num_levels=levels))
    recon = np.asarray(recon)
    for m in DEVICE_METRICS:
      if m in sums:
        sums[m] += float(np.sum(np.asarray(values[m])[keep]))
    for m in HOST_METRICS:
      if m in sums:
        score = audio_metrics.pesq_score if m == "pesq" else audio_metrics.stoi_score
        sums[m] += float(np.sum(score(audio[keep], recon[keep], rate)))
    if "usage" in metrics:
      per_level = _level_ids(ids)  # padding rows counted too: they are real zero clips
      if counts is None:
        counts = [np.zeros(model.codebook_size, np.int64) for _ in per_level]
      for c, x in zip(counts, per_level):
        c += np.bincount(x, minlength=model.codebook_size)
    for i in np.flatnonzero(keep):
      if saved < num_saved and jax.process_index() == 0:
        write_wav(out_dir / "clips" / f"clip_{saved}_original.wav", audio[i], rate)
        write_wav(out_dir / "clips" / f"clip_{saved}_recon.wav", recon[i], rate)
        if saved == 0:
          save_spectrogram_pair(out_dir / "spectrograms.png", audio[i], recon[i], rate)
        saved += 1
    num_clips += int(keep.sum())
  if num_clips == 0:
    raise ValueError("no clips to evaluate (the data is empty)")
  results = {m: s / num_clips for m, s in sums.items()}
  if counts is not None:
    results["codebook_usage"] = float(np.mean([np.mean(c > 0) for c in counts]))
  results.update(num_levels=levels, bitrate_kbps=model.bitrate(levels) / 1000.0,
                 num_clips=num_clips, **(info or {}))
  if jax.process_index() == 0:
    results_path = pathlib.Path(results_path or out_dir / "results.json")
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
  return results


def evaluate_audio_levels(model, make_batches, levels, *, out_dir, **kwargs) -> list[dict]:
  """`evaluate_audio` at each number of levels; writes levels.{jsonl,md,png} in `out_dir`."""
  levels = [int(k) for k in levels]
  if not levels:
    raise ValueError("levels is empty")
  out_dir = pathlib.Path(out_dir)
  rows = [evaluate_audio(model, make_batches(), out_dir=out_dir / f"levels_{k:02d}",
                         num_levels=k, **kwargs) for k in levels]
  if jax.process_index() == 0:
    write_levels_table(rows, out_dir)
  return rows


def _columns(rows):
  return [m for m in (*DEVICE_METRICS, *HOST_METRICS, "codebook_usage")
          if any(m in row for row in rows)]


def levels_markdown(rows: list[dict]) -> str:
  columns = _columns(rows)
  lines = ["| levels | kbps | " + " | ".join(columns) + " |",
           "|---:|---:|" + "---:|" * len(columns)]
  for row in rows:
    cells = [f"{row[m]:.4f}" if m in row else "" for m in columns]
    lines.append(f"| {row['num_levels']} | {row['bitrate_kbps']:.2f} | " + " | ".join(cells)
                 + " |")
  return "\n".join(lines) + "\n"


def write_levels_table(rows: list[dict], out_dir) -> None:
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  with open(out_dir / "levels.jsonl", "w") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")
  (out_dir / "levels.md").write_text(levels_markdown(rows))
  columns = _columns(rows)
  fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False)
  for ax, metric in zip(axes[0], columns):
    ax.plot([r["bitrate_kbps"] for r in rows], [r.get(metric, np.nan) for r in rows], "o-")
    ax.set_xlabel("kbps")
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    ax.set_title(f"{metric} ({better} is better)")
    ax.grid(True, alpha=0.3)
  fig.tight_layout()
  fig.savefig(out_dir / "levels.png", dpi=100)
  plt.close(fig)
