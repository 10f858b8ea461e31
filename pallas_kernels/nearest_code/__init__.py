"""Fused nearest-code search for vector quantisers (Pallas TPU and Mosaic GPU kernels)."""
from pallas_kernels.nearest_code.dispatch import (
    grouped_nearest_code,
    nearest_code,
    residual_nearest_code,
)
from pallas_kernels.nearest_code.reference import (
    grouped_nearest_code_reference,
    nearest_code_reference,
    residual_nearest_code_reference,
)

__all__ = [
    "grouped_nearest_code",
    "grouped_nearest_code_reference",
    "nearest_code",
    "nearest_code_reference",
    "residual_nearest_code",
    "residual_nearest_code_reference",
]
