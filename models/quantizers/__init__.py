"""Quantizers and bottlenecks. They compute in float32 whatever the activation dtype."""
from models.quantizers.fsq import FSQ
from models.quantizers.gaussian import DiagonalGaussian
from models.quantizers.vq import VectorQuantizer, codebook_stats

__all__ = ["DiagonalGaussian", "FSQ", "VectorQuantizer", "codebook_stats"]
