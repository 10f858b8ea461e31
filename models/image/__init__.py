"""Image tokenizers, one file per family."""
