"""Evaluate a tokenizer's reconstructions: PSNR, SSIM, codebook usage/entropy, and a grid.

  python eval.py --model titok_s128 --checkpoint path/to/tokenizer_titok_s128_imagenet
  python eval.py --workdir runs/tiny                 # a model trained with train.py (EMA)
  python eval.py --model titok_tiny_vq --data folder:/my/images --num 500

Prints the metrics and writes <out>/results.json and <out>/recon_grid.png.
"""
import json
import pathlib

from absl import app, flags, logging

_MODEL = flags.DEFINE_string("model", None, "Registered model name (see zoo.list_models()).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Released checkpoint: HF repo dir, .safetensors/.bin, repo id.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir to evaluate instead.")
_WEIGHTS = flags.DEFINE_enum("weights", "ema", ["ema", "params"], "Weights of a workdir run.")
_DATA = flags.DEFINE_string("data", "builtin:photos", "builtin:photos, folder:/path, tfds:NAME.")
_SPLIT = flags.DEFINE_string("split", None, "Dataset split (default: the source's eval split).")
_NUM = flags.DEFINE_integer("num", None, "Number of images (default: the whole split).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Images per batch.")
_OUT = flags.DEFINE_string("out", None, "Output directory (default: eval_<model>).")


def main(argv):
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  import zoo
  from zoo.data import make_image_dataset
  from zoo.evals.reconstruction import evaluate_reconstruction
  from zoo.train.trainer import load_trained_model

  if (_MODEL.value is None) == (_WORKDIR.value is None):
    raise app.UsageError("pass exactly one of --model (with --checkpoint) or --workdir")
  if _WORKDIR.value:
    model, name = load_trained_model(_WORKDIR.value, weights=_WEIGHTS.value), "workdir"
  elif _CHECKPOINT.value:
    model, name = zoo.from_pretrained(_MODEL.value, checkpoint=_CHECKPOINT.value), _MODEL.value
  else:
    logging.warning("no --checkpoint: evaluating randomly initialised weights")
    model, name = zoo.create(_MODEL.value), _MODEL.value
  data = make_image_dataset(_DATA.value, image_size=model.config.image_size,
                            batch_size=_BATCH.value, train=False, split=_SPLIT.value,
                            num_examples=_NUM.value)
  out = pathlib.Path(_OUT.value or f"eval_{name}")
  results = evaluate_reconstruction(model, data, out_dir=out, num_batches=len(data)
                                    if hasattr(data, "__len__") else None)
  print(json.dumps(results, indent=2))
  print(f"wrote {out / 'results.json'} and {out / 'recon_grid.png'}")


if __name__ == "__main__":
  app.run(main)
