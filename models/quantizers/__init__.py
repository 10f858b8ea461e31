"""Quantizers and bottlenecks. They compute in float32 whatever the activation dtype."""
from models.quantizers.gaussian import DiagonalGaussian
from models.quantizers.vq import VectorQuantizer, codebook_stats

__all__ = ["DiagonalGaussian", "VectorQuantizer", "codebook_stats"]
