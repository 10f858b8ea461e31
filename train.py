"""Train a registered tokenizer from an ml_collections config.

  python train.py --workdir runs/tiny                       # tiny TiTok on the built-in photos
  python train.py --config zoo/configs/titok.py:titok_s128 --workdir runs/s128 \
      --config.data=tfds:imagenet2012 --config.batch_size=256

Metrics go to <workdir>/metrics.jsonl, reconstructions to <workdir>/recon/, checkpoints to
<workdir>/checkpoints/; running the same command again resumes from the last checkpoint.
"""
import pathlib

from absl import app, flags, logging
from ml_collections import config_flags

from zoo import distributed

_DEFAULT_CONFIG = str(pathlib.Path(__file__).parent / "zoo" / "configs" / "titok.py") + ":tiny"
_CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "Training config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go.",
                               required=True)


def main(argv):
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax is chatty at INFO.
  distributed.initialize_from_flags()
  from zoo.train.trainer import Trainer
  Trainer(_CONFIG.value, _WORKDIR.value).train()


if __name__ == "__main__":
  app.run(main)
