"""FID reference statistics of a dataset under a pinned protocol, written as .npz (`mu`, `sigma`,
`count`: the format zoo.evals.fid.load_statistics and pytorch-fid read).

  python -m zoo.evals.reference_stats --data tfds:imagenet2012 --split validation \
      --protocol titok --inception_checkpoint DIR_OR_FILE --out stats.npz

Every image is cropped by the protocol (zoo/evals/protocols.py) in uint8 and handed as uint8 to
the FID Inception (`inception_fid`, pool features), as TiTok does for its real images.
"""
import argparse
import functools
import json
import math

import numpy as np
import tqdm

from zoo.evals.fid import FeatureStatistics
from zoo.evals.protocols import PROTOCOLS, preprocess


def compute_reference_statistics(batches, features_fn, *, num_batches=None) -> FeatureStatistics:
  """Streams batches through `features_fn` ([B, ...] -> [B, D]) into FID statistics.

  A batch is an array of images, or a dict with "image" and optionally "mask" (False on the
  padding of zoo.data's eval batches, which is skipped).
  """
  stats = None
  for batch in tqdm.tqdm(batches, total=num_batches, desc="reference statistics",
                         dynamic_ncols=True):
    images = batch
    if isinstance(batch, dict):
      images = np.asarray(batch["image"])
      if "mask" in batch:
        images = images[np.asarray(batch["mask"], bool)]
    if not len(images):
      continue
    features = np.asarray(features_fn(images))
    if features.ndim != 2 or len(features) != len(images):
      raise ValueError(f"features_fn must give [{len(images)}, D] for {len(images)} images, "
                       f"got shape {features.shape}")
    if stats is None:
      stats = FeatureStatistics(features.shape[1])
    stats.update(features)
  if stats is None:
    raise ValueError("no images to compute reference statistics of")
  return stats


def inception_features_fn(checkpoint):
  """uint8 images -> [B, 2048] pool features of the FID Inception (loaded here: it is big)."""
  from flax import nnx
  from zoo import registry
  model = registry.from_pretrained("inception_fid", checkpoint=checkpoint)
  pool = nnx.jit(lambda m, x: m.features(x)["pool"])
  return lambda images: np.asarray(pool(model, images))


def write_reference_statistics(out, *, data, features_fn, protocol="titok", image_size=256,
                               split=None, batch_size=64, num_examples=None, data_dir=None):
  """Computes the statistics of `data` under `protocol` and writes them to `out`."""
  from zoo.data.protocol_batches import make_protocol_batches
  transform = functools.partial(preprocess, protocol=protocol, image_size=image_size)
  batches, n = make_protocol_batches(data, transform=transform, batch_size=batch_size,
                                     split=split, num_examples=num_examples, data_dir=data_dir)
  stats = compute_reference_statistics(batches, features_fn,
                                       num_batches=math.ceil(n / batch_size))
  stats.save(out)
  return stats


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data", required=True, help="builtin:photos, folder:/path or tfds:NAME")
  p.add_argument("--split", default=None, help="default: the eval split (tfds: validation)")
  p.add_argument("--protocol", default="titok", choices=sorted(PROTOCOLS))
  p.add_argument("--image_size", type=int, default=256)
  p.add_argument("--out", required=True, help="the .npz to write")
  p.add_argument("--inception_checkpoint", default=None,
                 help="pt_inception-2015-12-05-6726825d.pth or a converted inception_fid file")
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--num_examples", type=int, default=None, help="default: the whole split")
  p.add_argument("--data_dir", default=None, help="TFDS data dir")
  args = p.parse_args(argv)
  stats = write_reference_statistics(
      args.out, data=args.data, features_fn=inception_features_fn(args.inception_checkpoint),
      protocol=args.protocol, image_size=args.image_size, split=args.split,
      batch_size=args.batch_size, num_examples=args.num_examples, data_dir=args.data_dir)
  print(json.dumps({"out": args.out, "count": stats.count, "protocol": args.protocol,
                    "image_size": args.image_size, "data": args.data, "split": args.split}))


if __name__ == "__main__":
  main()
