"""Fused kernels (Pallas on TPU and GPU) with plain-XLA fallbacks, one dispatcher each.

`impl` picks an implementation per call; `set_default_impl` / `default_impl` or the
ZOO_KERNEL_IMPL environment variable set it for the whole zoo (pallas_kernels/impl.py).
"""
from pallas_kernels.flash_attention import flash_attention
from pallas_kernels.impl import default_impl, set_default_impl
from pallas_kernels.nearest_code import grouped_nearest_code, nearest_code, residual_nearest_code

__all__ = ["flash_attention", "nearest_code", "residual_nearest_code", "grouped_nearest_code",
           "default_impl", "set_default_impl"]
