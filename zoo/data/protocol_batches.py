"""Uint8 batches of a dataset through a caller's per-image transform, in order, for reference
statistics: the evaluation protocols (zoo/evals/protocols.py) start from the decoded uint8
image, while make_image_dataset resizes and converts to float itself.
"""
import grain

from zoo.data.pipeline import open_source


def make_protocol_batches(spec: str, *, transform, batch_size: int, split: str | None = None,
                          num_examples: int | None = None, data_dir: str | None = None,
                          num_threads: int = 2, process_index: int = 0,
                          process_count: int = 1) -> tuple[grain.IterDataset, int]:
  """(dataset of transform(image) batches, number of images): one pass in order.

  `transform` maps a uint8 [H, W, 3] image to a fixed-shape array. The last batch may be
  smaller. split=None picks the eval split ('validation' for tfds, 'eval' for builtin:photos).
  With several processes each reads images process_index, process_index + process_count, ...
  of the first `num_examples`; the count returned is the total over all processes.
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
  if batch_size < 1:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  source, _ = open_source(spec, split, train=False, data_dir=data_dir)
  n = len(source) if num_examples is None else num_examples
  if not 0 < n <= len(source):
    raise ValueError(f"num_examples={num_examples}, but {spec} has {len(source)} examples")
  ds = grain.MapDataset.range(n)[process_index::process_count].map(
      lambda i: transform(source[i]))
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * batch_size)
  return ds.to_iter_dataset(read).batch(batch_size, drop_remainder=False), n
