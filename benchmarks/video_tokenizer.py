"""Video tokenizer encode+decode on CPU: the zoo (JAX/Flax NNX) against the official PyTorch
code, the same weights, one process. --family larp (default) or omnitokenizer.

OmniTokenizer (--family omnitokenizer --official_repo /tmp/omni_official): the released
joint-stage architecture (imagenet_k600: "ttww"/"tttt", RoPE, temporal patch 4, 8192x8 codes)
with `omnitokenizer_state_dict` weights, on one 256^2 image (a 1-frame input) and one
17x256^2 clip (builtin:clips, resized), the official on the paper's attention path (no SDPA,
as tests/golden/omnitokenizer_official.py sets it); the zoo's compiled peak memory of the clip
round trip (zoo.evals.memory) is reported too. `--batch_sizes` is the number of images/clips.

Both models are the released architecture (hywang66/LARP-L-long-tokenizer's config: 16x128^2
clips, 1024 tokens, 12+12 ViT-B blocks, 8192 codes, the GPT-C-S prior) filled with one seeded
state dict in the official layout (`zoo.convert.seeded.seeded_state_dict`; the fixed sin-cos
buffers are the official model's own). Before timing, both encode the same clips and the script
reports the share of identical token ids and the largest difference of the decoded clips.

One timed repetition is one encode + decode of a batch of real 16x128^2 clips (builtin:clips):
  zoo:       ids = model.encode(x); y = model.decode(ids)           (jax.block_until_ready)
  official:  e = model.encode(x) (deterministic VQ, eval mode); model.decode(e["encoded"])
             inside torch.inference_mode(), torch.set_num_threads(--threads)
Each side is warmed up once (the zoo's compile time is reported separately); then the two
alternate, the order flipping every repetition. Throughput = batch / median wall seconds.

The official code is imported from a checkout (never copied into this repo) through
tests/golden/larp_official.py, which needs timm, einops and easydict besides torch:
  git clone https://github.com/hywang66/LARP /tmp/larp_official
  .venv/bin/pip install timm --no-deps; .venv/bin/pip install easydict
  .venv/bin/python benchmarks/video_tokenizer.py --official_repo /tmp/larp_official

Prints a table and writes JSON lines (a meta record, then one record per measurement) to --out.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

from bench_common import JsonLinesLog, alternating_seconds

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "golden"))
MODEL = "larp_l_long"
BUFFERS = ("encoder_patch_pe", "decoder_latent_pe", "decoder_patch_query_embed")


def released_kwargs() -> dict:
  """LARPTokenizer's constructor arguments of LARP-L-long (cfgs/larp_tokenizer.yaml with the
  reproduce script's overrides)."""
  golden = json.loads((ROOT / "tests/golden/larp_vq_config.json").read_text())
  golden.update(bottleneck_token_num=1024, input_size=128, frame_num=16, encoder_hidden_size=768,
                decoder_hidden_size=768, encoder_num_heads=12, decoder_num_heads=12,
                encoder_depth=12, decoder_depth=12)
  golden["bottleneck"]["args"].update(bottleneck_dim=16)
  golden["bottleneck"]["args"]["regularizer"]["args"].update(codebook_size=8192)
  golden["prior_model"]["name"] = "gptc-S"
  return golden


def build(repo):
  import torch
  from larp_official import import_official
  import zoo
  from flax import nnx
  from zoo.convert import larp as convert
  from zoo.convert.seeded import seeded_state_dict
  cls = import_official(repo)
  official = cls(**released_kwargs())
  shapes = {k: tuple(v.shape) for k, v in official.state_dict().items() if k not in BUFFERS}
  state = seeded_state_dict(shapes, seed=0)
  official.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
  official.eval().set_vq_eval_deterministic(True)
  state.update({k: v.numpy() for k, v in official.state_dict().items() if k in BUFFERS})
  ours = nnx.eval_shape(lambda: zoo.create(MODEL))
  convert.load_state_dict(ours, state, model_name=MODEL)
  return official, ours


def clips(batch: int) -> np.ndarray:
  from zoo.data import make_video_eval_batches
  all_clips = np.concatenate(make_video_eval_batches("builtin:clips", num_frames=16, size=128,
                                                     batch_size=8))
  return all_clips[np.arange(batch) % len(all_clips)]


def build_omnitokenizer(repo):
  import argparse as ap
  import torch
  from flax import nnx
  from omnitokenizer_official import import_official
  import make_omnitokenizer_golden as golden
  import zoo
  from zoo.convert import omnitokenizer as convert
  from zoo.convert.seeded import omnitokenizer_state_dict
  vqgan, _ = import_official(repo)
  hparams = dict(golden.ARGS, embedding_dim=512, n_codes=8192, resolution=256, patch_size=8,
                 twod_window_size=8, dim_head=64, heads=8)
  official = vqgan(ap.Namespace(**hparams)).eval()
  shapes = {k: tuple(v.shape) for k, v in official.state_dict().items()
            if not k.endswith("relative_position_index")}
  state = omnitokenizer_state_dict(shapes, seed=0)
  official.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
  state.update({k: v.numpy() for k, v in official.state_dict().items()
                if k.endswith("relative_position_index")})
  ours = nnx.eval_shape(lambda: zoo.create("omnitokenizer_imagenet_k600"))
  convert.load_state_dict(ours, state)
  return official, ours


def omni_inputs(kind: str, batch: int) -> np.ndarray:
  from zoo.data import make_video_eval_batches
  clip = np.concatenate(make_video_eval_batches("builtin:clips", num_frames=17, size=256,
                                                batch_size=2, num_clips=2))
  clip = clip[np.arange(batch) % len(clip)]
  return clip[:, 0] if kind == "image" else clip


def run_omni_zoo(model, x):
  import jax
  ids = jax.block_until_ready(model.encode(x))
  return ids, jax.block_until_ready(model.decode(ids, clip=False))


def run_omni_official(model, x):
  import torch
  is_image = x.ndim == 4
  with torch.inference_mode():
    ids = model.encode(x - 0.5, is_image)
    return ids[:, 0] if is_image else ids, model.decode(ids, is_image) + 0.5


def omni_memory(model) -> dict:
  import jax
  import jax.numpy as jnp
  from zoo.evals.memory import model_memory
  def roundtrip(m, video):
    codes, _ = m.codebook(m.code_inputs(m.encode_latents(video)), train=False)
    return m.decode_latents(codes)
  clip = jax.ShapeDtypeStruct((1, 17, 256, 256, 3), jnp.float32)
  return model_memory(model, roundtrip, clip)


def run_zoo(model, x):
  import jax
  ids = jax.block_until_ready(model.encode(x))
  return ids, jax.block_until_ready(model.decode(ids, clip=False))


def run_official(model, x):
  import torch
  with torch.inference_mode():
    enc = model.encode(x)
    return enc["bottleneck_rep"], model.decode(enc["encoded"])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--official_repo", type=pathlib.Path, required=True)
  parser.add_argument("--family", choices=("larp", "omnitokenizer"), default="larp")
  parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--out", default=None, help="default: benchmarks/results/"
                      "video_tokenizer.jsonl (larp) or omnitokenizer_tokenizer.jsonl")
  args = parser.parse_args()
  args.out = args.out or str(ROOT / "benchmarks/results" / (
      "video_tokenizer.jsonl" if args.family == "larp" else "omnitokenizer_tokenizer.jsonl"))
  import jax
  import torch
  torch.set_num_threads(args.threads)
  log = JsonLinesLog(args.out)
  log({"meta": True, "date": datetime.date.today().isoformat(), "cpu": platform.processor()
       or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
       "python": platform.python_version(), "jax": jax.__version__,
       "flax": importlib.metadata.version("flax"), "torch": torch.__version__,
       "family": args.family, "command": " ".join(sys.argv)})
  omni = args.family == "omnitokenizer"
  official, ours = (build_omnitokenizer if omni else build)(args.official_repo)
  if omni:
    memory = omni_memory(ours)
    log({"kind": "compiled_memory", "input": "1x17x256x256", **memory})
    print(f"zoo 17x256^2 encode+decode: compiled peak {memory['peak_bytes'] / 2**30:.2f} GiB")
  zoo_fn, official_fn = (run_omni_zoo, run_omni_official) if omni else (run_zoo, run_official)
  cases = [(k, b) for k in ("image", "video") for b in args.batch_sizes] if omni else [
      ("video", b) for b in args.batch_sizes]
  for kind, batch in cases:
    x = omni_inputs(kind, batch) if omni else clips(batch)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2) if x.ndim == 4 else torch.from_numpy(
        x).permute(0, 4, 1, 2, 3)
    xt = xt.contiguous()
    to_nhwc = (lambda t: t.permute(0, 2, 3, 1)) if x.ndim == 4 else (
        lambda t: t.permute(0, 2, 3, 4, 1))
    t0 = time.perf_counter()
    ids, recon = zoo_fn(ours, x)
    compile_s = time.perf_counter() - t0
    ids_t, recon_t = official_fn(official, xt)
    same = float(np.mean(np.asarray(ids) == ids_t.numpy()))
    diff = float(np.abs(np.asarray(recon) - to_nhwc(recon_t).numpy()).max())
    times = alternating_seconds({"zoo": lambda: zoo_fn(ours, x),
                                 "official": lambda: official_fn(official, xt)}, args.reps)
    row = {"family": args.family, "input": kind, "batch": batch, "ids_identical": same,
           "max_recon_diff": diff, "zoo_first_call_s": compile_s,
           **{f"{k}_per_s": batch / statistics.median(v) for k, v in times.items()},
           **{f"{k}_seconds": v for k, v in times.items()}}
    row["speedup"] = row["zoo_per_s"] / row["official_per_s"]
    log(row)
    print(f"{kind} batch {batch}: zoo {row['zoo_per_s']:.3f}/s, official "
          f"{row['official_per_s']:.3f}/s ({row['speedup']:.2f}x); ids identical "
          f"{same:.4f}, max |recon diff| {diff:.2e}", flush=True)
  log.close()


if __name__ == "__main__":
  main()
