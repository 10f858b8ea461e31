"""Official checkpoints -> NNX state, one module per family."""
