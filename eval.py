"""Evaluate a tokenizer's reconstructions: rFID, IS, PSNR, SSIM, LPIPS, codebook usage;
for audio codecs mel/STFT distance, SI-SDR, PESQ, STOI, codebook usage and bitrate.

  python eval.py --model titok_s128 --checkpoint path/to/tokenizer_titok_s128_imagenet \
      --data tfds:imagenet2012 --split validation --num 50000 \
      --metrics rfid,is,psnr,ssim,lpips,usage --protocol titok \
      --inception_checkpoint pt_inception-2015-12-05-6726825d.pth \
      --lpips_checkpoint path/to/lpips_vgg_dir --out results.json
  python eval.py --workdir runs/tiny                 # a model trained with train.py (EMA)
  python eval.py --workdir runs/odp --num-tokens 1,2,4,8,16,32   # rate-distortion sweep
  python eval.py --model dac_44khz --checkpoint weights.pth --data folder:/path/to/wavs \
      --num-levels 1,2,4,9 --seconds 5          # audio: one evaluation per number of levels
  python eval.py --model larp_l_long --checkpoint path/to/LARP-L-long-tokenizer \
      --fvd_protocol larp_ucf101 --metrics psnr,ssim,lpips,rfvd,usage \
      --i3d_checkpoint i3d_pretrained_400.pt --lpips_checkpoint path/to/lpips_vgg_dir

Images are prepared by the named protocol (zoo/evals/protocols.py: titok, titok_wds, adm).
Every process evaluates its share of the images over its devices and the results are gathered
(multi-process flags as train.py). Writes the JSON results (--out: a .json path, or a directory
that gets results.json) and recon_grid.png beside them. With --num-tokens (flexible-length
tokenizers) it evaluates each token count and writes rate_distortion.{jsonl,md,png} into the
--out directory. Audio codecs (models with a sample rate) are evaluated on --seconds clips
(default data builtin:audio) with --metrics from mel_distance, stft_distance, si_sdr, pesq,
stoi, usage; they write results.json, clips/*_{original,recon}.wav and spectrograms.png, and
with --num-levels a levels.{jsonl,md,png} table over bitrates. Video tokenizers (models with a
frame count) are evaluated on fixed clips (default data builtin:clips) with --metrics from psnr,
ssim, lpips, rfvd, usage; --fvd_protocol pins the data, split, clip length, size and clip count
of a paper's rFVD (zoo/evals/fvd.py PROTOCOLS); they write results.json, side_by_side.{mp4,gif}
and frames.png. 3D occupancy tokenizers (3DShape2VecSet) are evaluated on shapes (default data
builtin:shapes, split test) for IoU, Chamfer distance and F-score at --tau on meshes marched on a
--resolution grid; they write results.json, per_shape.jsonl, meshes/*.obj and meshes.png.
Flag names take dashes or underscores.
"""
import json
import pathlib

from absl import app, flags, logging

from zoo import distributed

_MODEL = flags.DEFINE_string("model", None, "Registered model name (see zoo.list_models()).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                  "Released checkpoint: HF repo dir, .safetensors/.bin, repo id.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir to evaluate instead.")
_WEIGHTS = flags.DEFINE_enum("weights", "ema", ["ema", "params"], "Weights of a workdir run.")
_DATA = flags.DEFINE_string("data", "builtin:photos", "builtin:photos, folder:/path, tfds:NAME.")
_SPLIT = flags.DEFINE_string("split", None, "Dataset split (default: the source's eval split).")
_NUM = flags.DEFINE_integer("num", None, "Number of images (default: the whole split).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Images per batch and process.")
_METRICS = flags.DEFINE_list("metrics", ["psnr", "ssim", "usage"],
                             "Any of rfid, is, psnr, ssim, lpips, usage.")
_PROTOCOL = flags.DEFINE_string("protocol", "titok", "Image preparation: titok, titok_wds, adm.")
_INCEPTION = flags.DEFINE_string("inception_checkpoint", None,
                                 "pt_inception-2015-12-05-6726825d.pth (for rfid and is).")
_LPIPS = flags.DEFINE_string("lpips_checkpoint", None, "LPIPS weights (a directory, see "
                             "zoo/convert/lpips.py); for the lpips metric.")
_LPIPS_NET = flags.DEFINE_enum("lpips_net", "vgg", ["vgg", "alex"], "LPIPS backbone.")
_REFERENCE = flags.DEFINE_string("reference_stats", None,
                                 "Real-image FID statistics (.npz: mu, sigma; ADM batches too) "
                                 "instead of the evaluated images' own.")
_NUM_TOKENS = flags.DEFINE_list("num_tokens", None,
                                "Token counts to keep, e.g. 1,2,4,...,256: a rate-distortion "
                                "table and plot (flexible-length tokenizers).")
_NUM_LEVELS = flags.DEFINE_list("num_levels", None,
                                "Audio codecs: residual levels to keep, e.g. 1,2,4,8 (one "
                                "evaluation per bitrate); default all levels.")
_SECONDS = flags.DEFINE_float("seconds", 5.0, "Audio codecs: length of each evaluated clip.")
_I3D = flags.DEFINE_string("i3d_checkpoint", None, "Video: i3d_pretrained_400.pt (for rfvd).")
_FVD_PROTOCOL = flags.DEFINE_string("fvd_protocol", None, "Video: a pinned rFVD protocol "
                                    "(larp_ucf101, omnitokenizer_ucf101).")
_MODALITY = flags.DEFINE_enum("modality", None, ["image", "video"], "Joint image-video "
                               "tokenizers (OmniTokenizer): which to evaluate (default: video "
                               "for a clip source or --fvd_protocol, else image).")
_FRAMES = flags.DEFINE_integer("frames", None, "Video: frames per clip (default: the model's "
                               "clip length; OmniTokenizer 17).")
_FRAME_STRIDE = flags.DEFINE_integer("frame_stride", 1, "Video: source frames between frames.")
_RESOLUTION = flags.DEFINE_integer("resolution", 128, "3D: marching-cubes grid cells per axis "
                                   "(3DShape2VecSet's 128: 129^3 queries).")
_TAU = flags.DEFINE_float("tau", 0.02, "3D: F-score distance threshold.")
_MESH_POINTS = flags.DEFINE_integer("mesh_points", 100_000, "3D: points sampled on each "
                                    "reconstructed mesh for Chamfer and F-score.")
_OUT = flags.DEFINE_string("out", None, "results .json path or directory (default: eval_<model>).")


def load_model():
  import zoo
  from zoo.train.train_state import load_trained_model
  if (_MODEL.value is None) == (_WORKDIR.value is None):
    raise app.UsageError("pass exactly one of --model (with --checkpoint) or --workdir")
  if _WORKDIR.value:
    return load_trained_model(_WORKDIR.value, weights=_WEIGHTS.value), "workdir"
  if _CHECKPOINT.value:
    return zoo.from_pretrained(_MODEL.value, checkpoint=_CHECKPOINT.value), _MODEL.value
  logging.warning("no --checkpoint: evaluating randomly initialised weights")
  return zoo.create(_MODEL.value), _MODEL.value


def load_nets(metrics):
  import zoo
  from zoo.evals.reconstruction import EvalNets
  inception = lpips = None
  if {"rfid", "is"} & set(metrics):
    if not _INCEPTION.value:
      raise app.UsageError("rfid and is need --inception_checkpoint "
                           "(pt_inception-2015-12-05-6726825d.pth)")
    inception = zoo.from_pretrained("inception_fid", checkpoint=_INCEPTION.value)
  if "lpips" in metrics:
    if not _LPIPS.value:
      raise app.UsageError("lpips needs --lpips_checkpoint")
    lpips = zoo.from_pretrained(f"lpips_{_LPIPS_NET.value}", checkpoint=_LPIPS.value)
  return EvalNets(inception=inception, lpips=lpips)


def main(argv):
  del argv
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  distributed.initialize_from_flags()
  import jax
  import numpy as np
  from zoo.data.protocol_batches import make_protocol_batches
  from zoo.evals.fid import load_statistics
  from zoo.evals.protocols import preprocess
  from zoo.evals.rate_distortion import evaluate_rate_distortion
  from zoo.evals.reconstruction import evaluate_reconstruction

  model, name = load_model()
  if hasattr(model, "occupancy"):  # 3D occupancy tokenizers
    return evaluate_shape_tokenizer(model, name)
  from zoo.train.audio import is_audio_model
  if is_audio_model(model.config):
    return evaluate_codec(model, name)
  from zoo.train.joint import is_joint_model
  from zoo.train.video import is_video_model
  if is_video_model(model.config) or (is_joint_model(model.config) and wants_video()):
    return evaluate_video_tokenizer(model, name)
  nets = load_nets(_METRICS.value)
  size = model.config.image_size
  data, _ = make_protocol_batches(
      _DATA.value, transform=lambda image: preprocess(image, _PROTOCOL.value, size),
      batch_size=_BATCH.value, split=_SPLIT.value, num_examples=_NUM.value,
      process_index=jax.process_index(), process_count=jax.process_count())
  def make_batches():
    return ({"image": batch.astype(np.float32) / 255.0} for batch in data)

  out = pathlib.Path(_OUT.value or f"eval_{name}")
  reference = load_statistics(_REFERENCE.value) if _REFERENCE.value else None
  kwargs = dict(metrics=_METRICS.value, nets=nets, reference_stats=reference,
                info={"protocol": _PROTOCOL.value})
  if _NUM_TOKENS.value:
    counts = [int(k) for k in _NUM_TOKENS.value]
    evaluate_rate_distortion(model, make_batches, counts, out_dir=out, **kwargs)
    if jax.process_index() == 0:
      print((out / "rate_distortion.md").read_text())
      print(f"wrote {out}/rate_distortion.{{jsonl,md,png}} and tokens_*/recon_grid.png")
    return
  out_dir, json_path = (out.parent, out) if out.suffix == ".json" else (out, out / "results.json")
  results = evaluate_reconstruction(model, make_batches(), out_dir=out_dir,
                                    results_path=json_path, **kwargs)
  if jax.process_index() == 0:
    print(json.dumps(results, indent=2))
    print(f"wrote {json_path} and {out_dir / 'recon_grid.png'}")


def wants_video() -> bool:
  """A joint image-video model evaluates clips when asked, or when the data are clips."""
  if _MODALITY.value:
    return _MODALITY.value == "video"
  return bool(_FVD_PROTOCOL.value or _FRAMES.value or _DATA.value.startswith("builtin:clips"))


def clip_shape(cfg) -> tuple[int, int]:
  """(frames, size) of the clips a video model is evaluated on."""
  if hasattr(cfg, "frame_num"):
    return _FRAMES.value or cfg.frame_num, cfg.input_size
  return _FRAMES.value or 17, cfg.resolution  # OmniTokenizer: 1 + 4 x 4 frames at 256^2


def evaluate_codec(model, name):
  """The audio branch of main(): fixed clips, every metric, WAV pairs, optional level sweep."""
  from zoo.data import make_audio_eval_batches
  from zoo.evals.audio_reconstruction import evaluate_audio, evaluate_audio_levels
  data = "builtin:audio" if not flags.FLAGS["data"].present else _DATA.value
  metrics = (["mel_distance", "stft_distance", "si_sdr", "usage"]
             if not flags.FLAGS["metrics"].present else _METRICS.value)
  cfg = model.config
  length = -(-int(round(_SECONDS.value * cfg.sample_rate)) // model.hop_length) * model.hop_length
  clips = make_audio_eval_batches(data, sample_rate=cfg.sample_rate, channels=cfg.channels,
                                  length=length, batch_size=_BATCH.value, num_clips=_NUM.value)
  def make_batches():
    return ({"audio": clip} for clip in clips)

  out = pathlib.Path(_OUT.value or f"eval_{name}")
  info = {"data": data, "seconds": length / cfg.sample_rate}
  if _NUM_LEVELS.value:
    evaluate_audio_levels(model, make_batches, [int(k) for k in _NUM_LEVELS.value], out_dir=out,
                          metrics=metrics, info=info)
    print((out / "levels.md").read_text())
    print(f"wrote {out}/levels.{{jsonl,md,png}} and levels_*/clips/*.wav")
    return
  out_dir, json_path = (out.parent, out) if out.suffix == ".json" else (out, out / "results.json")
  results = evaluate_audio(model, make_batches(), out_dir=out_dir, results_path=json_path,
                           metrics=metrics, info=info)
  print(json.dumps(results, indent=2))
  print(f"wrote {json_path}, {out_dir / 'clips'}/*.wav and {out_dir / 'spectrograms.png'}")


def evaluate_video_tokenizer(model, name):
  """The video branch of main(): fixed clips (or a pinned rFVD protocol), MP4/GIF examples."""
  import zoo
  from zoo.data import make_video_eval_batches
  from zoo.evals.fvd import PROTOCOLS
  from zoo.evals.video_reconstruction import evaluate_video
  cfg = model.config
  metrics = (["psnr", "ssim", "usage"] if not flags.FLAGS["metrics"].present
             else _METRICS.value)
  frames, size = clip_shape(cfg)
  spec = dict(data=_DATA.value if flags.FLAGS["data"].present else "builtin:clips",
              split=_SPLIT.value, num_frames=frames, size=size,
              num=_NUM.value, frame_stride=_FRAME_STRIDE.value, resize="styleganv",
              clip_stride=8)
  if _FVD_PROTOCOL.value:
    if _FVD_PROTOCOL.value not in PROTOCOLS:
      raise app.UsageError(f"unknown --fvd_protocol {_FVD_PROTOCOL.value!r}; choose from "
                           f"{sorted(PROTOCOLS)}")
    p = PROTOCOLS[_FVD_PROTOCOL.value]
    spec.update(data=p.data, split=p.split, num_frames=p.num_frames, size=p.size,
                num=p.num_clips, frame_stride=p.frame_stride, resize=p.resize, clip_stride=None)
  if (spec["num_frames"], spec["size"]) != (frames, size):
    logging.warning("protocol clips %dx%d^2, the model's %dx%d^2", spec["num_frames"],
                    spec["size"], frames, size)
  lpips = (zoo.from_pretrained(f"lpips_{_LPIPS_NET.value}", checkpoint=_LPIPS.value)
           if "lpips" in metrics and _LPIPS.value else None)
  i3d = (zoo.from_pretrained("i3d_kinetics400", checkpoint=_I3D.value)
         if "rfvd" in metrics and _I3D.value else None)
  clips = make_video_eval_batches(spec["data"], num_frames=spec["num_frames"], size=spec["size"],
                                  batch_size=_BATCH.value, num_clips=spec["num"],
                                  split=spec["split"], eval_clip_stride=spec["clip_stride"],
                                  frame_stride=spec["frame_stride"])
  out = pathlib.Path(_OUT.value or f"eval_{name}")
  out_dir, json_path = (out.parent, out) if out.suffix == ".json" else (out, out / "results.json")
  info = {k: spec[k] for k in ("data", "split", "num_frames", "size", "frame_stride")}
  info["fvd_protocol"] = _FVD_PROTOCOL.value
  results = evaluate_video(model, clips, out_dir=out_dir, results_path=json_path,
                           metrics=metrics, lpips=lpips, i3d=i3d, fvd_resize=spec["resize"],
                           info=info)
  print(json.dumps(results, indent=2))
  print(f"wrote {json_path}, {out_dir}/side_by_side.{{mp4,gif}} and {out_dir}/frames.png")


def evaluate_shape_tokenizer(model, name):
  """The 3D branch of main(): IoU, Chamfer, F-score, meshes (OBJ) and their views (PNG)."""
  from zoo.data.shape_sets import ShapeSet
  from zoo.evals.shape_reconstruction import evaluate_shapes
  data = _DATA.value if flags.FLAGS["data"].present else "builtin:shapes"
  split = _SPLIT.value or "test"
  shapes = ShapeSet(data, split, limit=_NUM.value)
  out = pathlib.Path(_OUT.value or f"eval_{name}")
  out_dir, json_path = (out.parent, out) if out.suffix == ".json" else (out, out / "results.json")
  results = evaluate_shapes(model, shapes, out_dir=out_dir, results_path=json_path,
                            resolution=_RESOLUTION.value, tau=_TAU.value,
                            mesh_points=_MESH_POINTS.value,
                            info={"data": data, "split": split,
                                  "skipped": [n for n, _ in shapes.skipped]})
  print(json.dumps(results, indent=2))
  print(f"wrote {json_path}, {out_dir}/per_shape.jsonl, {out_dir}/meshes/*.obj and "
        f"{out_dir}/meshes.png")


def parse_flags(argv):
  """absl flags, with `--num-tokens` accepted for `--num_tokens` (and so for every flag)."""
  def underscored(arg):
    if not arg.startswith("--"):
      return arg
    name, eq, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + eq + value
  return flags.FLAGS([argv[0]] + [underscored(a) for a in argv[1:]])


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
