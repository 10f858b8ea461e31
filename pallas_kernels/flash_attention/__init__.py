"""Fused (flash) attention: Pallas TPU kernels, a GPU path, and the jnp reference."""
from pallas_kernels.flash_attention.dispatch import flash_attention
from pallas_kernels.flash_attention.masks import key_padding_mask
from pallas_kernels.flash_attention.reference import attention_reference

__all__ = ["attention_reference", "flash_attention", "key_padding_mask"]
