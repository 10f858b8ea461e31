"""Building blocks shared by every tokenizer family."""
from models.layers.attention import dot_product_attention
from models.layers.axes import axes
from models.layers.transformer import MultiheadAttention, Mlp, ResidualAttentionBlock

__all__ = ["dot_product_attention", "axes", "MultiheadAttention", "Mlp", "ResidualAttentionBlock"]
