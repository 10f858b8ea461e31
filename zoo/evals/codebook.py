"""Codebook usage, entropy and perplexity over a whole dataset, from a streaming histogram.

`models.quantizers.vq.codebook_stats` measures one batch inside the model; a dataset needs
the counts of all batches first, so this keeps an int64 histogram on the host and applies the
same formulas to it, in numpy. For residual ids [B, K, Q], keep one `CodebookUsage` per level
(`ids[..., q]`): every level has its own codebook.
"""
import numpy as np


def codebook_stats_from_counts(counts) -> dict:
  """Usage (fraction of codes hit), entropy (bits) and perplexity of a histogram of ids."""
  counts = np.asarray(counts, dtype=np.float64)
  probs = counts / max(counts.sum(), 1.0)
  nonzero = probs[probs > 0]
  entropy = float(-np.sum(nonzero * np.log2(nonzero)))
  return {
      "codebook_usage": float(np.mean(counts > 0)),
      "codebook_entropy_bits": entropy,
      "codebook_perplexity": float(2.0 ** entropy),
  }


class CodebookUsage:
  """Histogram of token ids accumulated over batches; `result()` gives the dataset stats."""

  def __init__(self, codebook_size: int):
    if codebook_size < 1:
      raise ValueError(f"codebook_size must be positive; got {codebook_size}")
    self.codebook_size = codebook_size
    self.counts = np.zeros(codebook_size, dtype=np.int64)

  def update(self, ids) -> None:
    """Adds a batch of ids (any shape, numpy or jax integers in [0, codebook_size))."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
      raise TypeError(f"token ids must be integers; got {ids.dtype}")
    if ids.size == 0:
      return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= self.codebook_size:
      raise ValueError(f"token ids must be in [0, {self.codebook_size}); "
                       f"got values in [{lo}, {hi}]")
    self.counts += np.bincount(ids.reshape(-1).astype(np.int64), minlength=self.codebook_size)

  def result(self) -> dict:
    return codebook_stats_from_counts(self.counts)

  def reset(self) -> None:
    self.counts[:] = 0
