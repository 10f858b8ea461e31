"""Rate-distortion of a flexible-length tokenizer: every metric against the tokens kept.

One evaluation per token count (`evaluate_reconstruction(num_tokens=k)`); the count is data to
the compiled program, so the whole sweep compiles once. Writes, beside one folder per count
(its results.json and recon_grid.png):
  rate_distortion.jsonl   one JSON row per count
  rate_distortion.md      the table
  rate_distortion.png     each metric against log2(tokens)
"""
import json
import pathlib
from typing import Callable, Iterable

import jax

from zoo.evals.reconstruction import check_num_tokens, evaluate_reconstruction

# Lower is better for these; the plot says so in its titles.
LOWER_IS_BETTER = ("rfid", "lpips")
# Codebook usage is left out: it counts the ids of every token, whatever the count kept.
TABLE_METRICS = ("psnr", "ssim", "lpips", "rfid", "inception_score")


def evaluate_rate_distortion(model, make_batches: Callable[[], Iterable], token_counts, *,
                             out_dir, **kwargs) -> list[dict]:
  """Evaluates `model` at each of `token_counts`; `make_batches()` gives a fresh pass over this
  process's share of the data. `kwargs` go to `evaluate_reconstruction` (metrics, nets, ...).
  Returns one results dict per count, in the order given."""
  token_counts = [int(k) for k in token_counts]
  if not token_counts:
    raise ValueError("token_counts is empty")
  for k in token_counts:
    check_num_tokens(model, k)
  out_dir = pathlib.Path(out_dir)
  rows = []
  for k in token_counts:
    rows.append(evaluate_reconstruction(model, make_batches(), out_dir=out_dir / f"tokens_{k:04d}",
                                        num_tokens=k, **kwargs))
  if jax.process_index() == 0:
    write_rate_distortion(rows, out_dir)
  return rows


def write_rate_distortion(rows: list[dict], out_dir) -> None:
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  with open(out_dir / "rate_distortion.jsonl", "w") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")
  (out_dir / "rate_distortion.md").write_text(markdown_table(rows))
  plot_rate_distortion(rows, out_dir / "rate_distortion.png")


def _columns(rows):
  return [m for m in TABLE_METRICS if any(m in row for row in rows)]


def markdown_table(rows: list[dict]) -> str:
  columns = _columns(rows)
  lines = ["| tokens | " + " | ".join(columns) + " |",
           "|---:|" + "---:|" * len(columns)]
  for row in rows:
    cells = [f"{row[m]:.4f}" if m in row else "" for m in columns]
    lines.append(f"| {row['num_tokens']} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot_rate_distortion(rows: list[dict], path) -> None:
  import matplotlib
  matplotlib.use("Agg")  # files only, no display
  from matplotlib import pyplot as plt

  columns = _columns(rows)
  tokens = [row["num_tokens"] for row in rows]
  fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.2), squeeze=False)
  for ax, metric in zip(axes[0], columns):
    ax.plot(tokens, [row.get(metric, float("nan")) for row in rows], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens kept")
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    ax.set_title(f"{metric} ({better} is better)")
    ax.grid(True, alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
