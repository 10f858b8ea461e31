"""Flax NNX modules of the tokenizer zoo. No training or I/O code lives here."""
