"""LARP-L-long encode+decode clips/s on CPU: the zoo (JAX/Flax NNX) against the official PyTorch
LARPTokenizer, the same weights, one process.

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

from bench_common import JsonLinesLog

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
  parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--out", default=str(ROOT / "benchmarks/results/video_tokenizer.jsonl"))
  args = parser.parse_args()
  import jax
  import torch
  torch.set_num_threads(args.threads)
  log = JsonLinesLog(args.out)
  log({"meta": True, "date": datetime.date.today().isoformat(), "cpu": platform.processor()
       or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
       "python": platform.python_version(), "jax": jax.__version__,
       "flax": importlib.metadata.version("flax"), "torch": torch.__version__,
       "command": " ".join(sys.argv)})
  official, ours = build(args.official_repo)
  rows = []
  for batch in args.batch_sizes:
    x = clips(batch)
    xt = torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()
    t0 = time.perf_counter()
    ids, recon = run_zoo(ours, x)
    compile_s = time.perf_counter() - t0
    ids_t, recon_t = run_official(official, xt)
    same = float(np.mean(np.asarray(ids) == ids_t.numpy()))
    diff = float(np.abs(np.asarray(recon) - recon_t.permute(0, 2, 3, 4, 1).numpy()).max())
    times = {"zoo": [], "official": []}
    for rep in range(args.reps):
      order = ("zoo", "official") if rep % 2 == 0 else ("official", "zoo")
      for side in order:
        start = time.perf_counter()
        run_zoo(ours, x) if side == "zoo" else run_official(official, xt)
        times[side].append(time.perf_counter() - start)
    row = {"batch": batch, "ids_identical": same, "max_recon_diff": diff,
           "zoo_first_call_s": compile_s,
           **{f"{k}_clips_per_s": batch / statistics.median(v) for k, v in times.items()},
           **{f"{k}_seconds": v for k, v in times.items()}}
    row["speedup"] = row["zoo_clips_per_s"] / row["official_clips_per_s"]
    log(row)
    rows.append(row)
    print(f"batch {batch}: zoo {row['zoo_clips_per_s']:.3f} clips/s, official "
          f"{row['official_clips_per_s']:.3f} clips/s ({row['speedup']:.2f}x); ids identical "
          f"{same:.4f}, max |recon diff| {diff:.2e}", flush=True)
  log.close()


if __name__ == "__main__":
  main()
