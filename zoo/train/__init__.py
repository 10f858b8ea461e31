"""Training: the shared loop, sharding, losses, optimizers, checkpoints and logging."""
