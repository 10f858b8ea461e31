"""ml_collections configs, one file per family: registered model configs and training configs."""
