"""Released EnCodec weights (raw `state_dict` .th files, e.g. encodec_24khz-d7cc33bc.th) ->
models/audio/encodec.py.

Names follow the original modules: SConv1d wraps NormConv1d wraps nn.Conv1d
(`encoder.model.{i}.conv.conv.weight_g|weight_v|bias`, GroupNorm at `.conv.norm.*` in the
48 kHz model), transposed convs `decoder.model.{i}.convtr.convtr.*`, the LSTM
`...lstm.weight_ih_l{k}`, and the EMA codebooks
`quantizer.vq.layers.{q}._codebook.{inited,cluster_size,embed,embed_avg}`.
"""
import pathlib
import re

from flax import nnx

from models.audio.encodec import Encodec, EncodecConfig
from zoo.convert import common
from zoo.convert.common import Rule
from zoo.convert.files import read_file

RELEASES = {
    "encodec_24khz": "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th",
    "encodec_48khz": "https://dl.fbaipublicfiles.com/encodec/v0/encodec_48khz-7e698e3e.th",
}
# Our path pattern -> the official name (applied in order, first match wins).
_RENAMES = (
    (r"^quantizer\.levels\.(\d+)\.(inited|cluster_size|embed|embed_avg)$",
     r"quantizer.vq.layers.\1._codebook.\2"),
    (r"^(.*)\.lstm\.layers\.(\d+)\.(weight_ih|weight_hh|bias_ih|bias_hh)$", r"\1.lstm.\3_l\2"),
    (r"^(.*)\.convtr\.conv\.(weight_g|weight_v|weight|bias)$", r"\1.convtr.convtr.\2"),
    (r"^(.*)\.norm\.scale$", r"\1.norm.weight"),
    (r"^(.*)$", r"\1"),
)


def official_name(path: str) -> str:
  for pattern, replacement in _RENAMES:
    if re.match(pattern, path):
      return re.sub(pattern, replacement, path)
  raise AssertionError(path)


def table(cfg: EncodecConfig) -> list[Rule]:
  """One rule per variable of the model of `cfg`, parameters and buffers alike."""
  model = nnx.eval_shape(lambda: Encodec(cfg, rngs=nnx.Rngs(0)))
  return [Rule(official_name(path), path) for path in sorted(common.model_params(model))]


def load_state_dict(model, state_dict: dict, *, model_name: str):
  common.load_state_dict(model, state_dict, table(model.config), model_name=model_name)


def read_checkpoint(source, *, model_name: str) -> dict:
  if source is None:
    url = RELEASES.get(model_name)
    raise ValueError(f"{model_name}: pass checkpoint=PATH to an EnCodec .th state dict"
                     + (f" (download {url})" if url else ""))
  path = pathlib.Path(source)
  if not path.is_file():
    raise FileNotFoundError(f"EnCodec checkpoint not found: {path}")
  return read_file(path)
