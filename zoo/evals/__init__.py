"""Reconstruction metrics and the helpers evaluators share."""
from zoo.evals.codebook import CodebookUsage, codebook_stats_from_counts
from zoo.evals.grid import save_recon_grid, to_uint8
from zoo.evals.image_metrics import psnr, ssim
from zoo.evals.mean_metrics import MeanMetrics

__all__ = [
    "CodebookUsage",
    "MeanMetrics",
    "codebook_stats_from_counts",
    "psnr",
    "save_recon_grid",
    "ssim",
    "to_uint8",
]
