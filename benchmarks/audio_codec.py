"""dac_44khz encode+decode real-time factor on CPU: the zoo (JAX/Flax NNX) against the official
PyTorch package (descript-audio-codec), with the SAME weights.

The official DAC is built with the 44.1 kHz release's constructor arguments; its state-dict
key/shape table is filled by `zoo.convert.seeded.codec_state_dict(shapes, seed=0)` (nothing is
downloaded), loaded into it (`load_state_dict(strict=True)`) and into ours through the zoo's
converter. Before timing, both code the same clip and the script reports the fraction of equal
codes and the largest difference between the decoded clips.

One timed repetition codes one clip of --seconds of a synthesized speech-like signal at 44.1 kHz,
batch 1:
  zoo:       jitted ids = model.encode(x); y = model.decode(ids)     (jax.block_until_ready)
  official:  x = model.preprocess(x, 44100); _, codes, ... = model.encode(x)
             z = model.quantizer.from_codes(codes)[0]; y = model.decode(z)
             in torch.inference_mode() with torch.set_num_threads(--threads)
After one warm-up call each (the zoo's compile time is reported separately), the two alternate,
the order flipping every repetition. RTF = median wall seconds / audio seconds (below 1 is
faster than real time).

The official package must be importable next to the zoo. Its pip install pulls torchaudio,
whose wheels do not load against torch 2.13 here, so the script can take it from another venv:
  python3.11 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch==2.13.0 \
      descript-audio-codec
  mkdir -p /tmp/stubs/torchaudio && touch /tmp/stubs/torchaudio/__init__.py  # never called
  .venv/bin/python benchmarks/audio_codec.py \
      --peer_site_packages /tmp/refvenv/lib/python3.11/site-packages --stub_path /tmp/stubs

Prints a table and writes JSON lines (measurements and a meta record with versions, CPU, date
and command) to --out.
"""
import argparse
import datetime
import os
import pathlib
import platform
import shlex
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RELEASE_KWARGS = dict(encoder_dim=64, encoder_rates=[2, 4, 8, 8], decoder_dim=1536,
                      decoder_rates=[8, 8, 4, 2], n_codebooks=9, codebook_size=1024,
                      codebook_dim=8, quantizer_dropout=0.5, sample_rate=44100)


def cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--peer_site_packages", default=None)
  parser.add_argument("--stub_path", default=None)
  parser.add_argument("--out", default=str(ROOT / "benchmarks/results/audio_codec_cpu.jsonl"))
  args = parser.parse_args()
  if args.stub_path:
    sys.path.insert(0, args.stub_path)
  if args.peer_site_packages:
    sys.path.append(args.peer_site_packages)  # after the zoo's venv: its packages win

  import jax
  import numpy as np
  import torch
  from dac.model.dac import DAC as OfficialDAC
  from flax import nnx

  import zoo
  from bench_common import JsonLinesLog
  from zoo.convert import dac as convert
  from zoo.convert.seeded import codec_state_dict
  from zoo.data.audio_samples import synthesize

  torch.set_num_threads(args.threads)
  official = OfficialDAC(**RELEASE_KWARGS).eval()
  weights = codec_state_dict({k: tuple(v.shape) for k, v in official.state_dict().items()}, 0)
  official.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
  ours = nnx.eval_shape(lambda: zoo.create("dac_44khz"))
  convert.load_state_dict(ours, weights, model_name="dac_44khz")

  rate = 44100
  audio = synthesize("speech", (7, 0), rate, args.seconds)[None]  # [1, T, 1]
  x_torch = torch.from_numpy(audio.transpose(0, 2, 1).copy())
  graph, state = nnx.split(ours)

  @jax.jit
  def zoo_codec(state, x):
    model = nnx.merge(graph, state)
    ids = model.encode(x)
    return ids, model.decode(ids)

  def official_codec(x):
    with torch.inference_mode():
      padded = official.preprocess(x, rate)
      _, codes, *_ = official.encode(padded)
      return codes, official.decode(official.quantizer.from_codes(codes)[0])

  start = time.perf_counter()
  ids, y = jax.block_until_ready(zoo_codec(state, audio))
  compile_s = time.perf_counter() - start
  codes, y_official = official_codec(x_torch)
  agree = float(np.mean(np.asarray(ids) == codes.numpy().transpose(0, 2, 1)))
  max_diff = float(np.abs(np.asarray(y)[:, :, 0] - y_official.numpy()[:, 0]).max())
  print(f"codes equal: {agree:.4%}; max |audio difference|: {max_diff:.2e}; "
        f"zoo compile + first call {compile_s:.1f} s")

  times = {"zoo": [], "official": []}
  runs = {"zoo": lambda: jax.block_until_ready(zoo_codec(state, audio)),
          "official": lambda: official_codec(x_torch)}
  for rep in range(args.reps):
    for name in (("zoo", "official") if rep % 2 == 0 else ("official", "zoo")):
      start = time.perf_counter()
      runs[name]()
      times[name].append(time.perf_counter() - start)

  log = JsonLinesLog(args.out)
  log({"meta": True, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
       "cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
       "jax": jax.__version__, "torch": torch.__version__,
       "command": shlex.join([sys.executable] + sys.argv), "codes_equal": agree,
       "max_audio_diff": max_diff, "zoo_compile_s": compile_s})
  print(f"{'impl':<10}{'median s':>10}{'RTF':>8}{'x realtime':>12}")
  for name, values in times.items():
    median = statistics.median(values)
    record = {"impl": name, "model": "dac_44khz", "seconds_audio": args.seconds,
              "median_s": median, "all_s": values, "rtf": median / args.seconds}
    log(record)
    print(f"{name:<10}{median:>10.2f}{median / args.seconds:>8.3f}"
          f"{args.seconds / median:>12.1f}")
  log.close()


if __name__ == "__main__":
  main()
