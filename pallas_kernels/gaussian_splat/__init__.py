"""Additive 2D Gaussian splatting (GPSToken's renderer): jnp reference, TPU and GPU kernels."""
from pallas_kernels.gaussian_splat.dispatch import gaussian_splat
from pallas_kernels.gaussian_splat.reference import splat_reference

__all__ = ["gaussian_splat", "splat_reference"]
