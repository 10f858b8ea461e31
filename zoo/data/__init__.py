"""Grain image pipelines: `make_image_dataset(spec, ...)` for training and evaluation streams,
`make_eval_batches(spec, ...)` for a small fixed eval set. Specs: builtin:photos,
folder:/path, tfds:NAME.
"""
from zoo.data.pipeline import make_eval_batches, make_image_dataset, open_source

__all__ = ["make_eval_batches", "make_image_dataset", "open_source"]
