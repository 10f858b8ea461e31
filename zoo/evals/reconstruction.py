"""Reconstruction evaluation over a dataset: rFID, IS, PSNR, SSIM, LPIPS and codebook usage.

Each process evaluates its own share of the images, split over its local devices; the
accumulators (FID feature sums, metric sums, id histograms, Inception logits) are then
gathered from all processes, so every process returns the same results for the whole set.

rFID and IS follow TiTok's evaluator (zoo/evals/protocols.py): reconstructions are clamped
and rounded to k / 255, then real and reconstructed images are cast to uint8 by truncation in
float32 before the FID Inception network. Without reference statistics the real side of the
FID is the same evaluated images (rFID); with them (`reference_stats`), those are used instead.
"""
import functools
import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from zoo.data.pipeline import host_inputs_batch
from zoo.evals.codebook import CodebookUsage
from zoo.evals.fid import FeatureStatistics, GaussianStatistics, frechet_distance
from zoo.evals.gaussian_overlay import save_token_overlay
from zoo.evals.grid import save_recon_grid
from zoo.evals.image_metrics import psnr, ssim
from zoo.evals.inception_score import InceptionScore
from zoo.evals.mean_metrics import MeanMetrics

METRICS = ("rfid", "is", "psnr", "ssim", "lpips", "usage")
POOL_DIM = 2048


class EvalNets(nnx.Module):
  """The frozen networks the requested metrics need (None where not needed); a module, so
  their weights enter the jitted step as arguments rather than compiled-in constants."""

  def __init__(self, inception: nnx.Module | None = None, lpips: nnx.Module | None = None):
    self.inception = inception
    self.lpips = lpips


def check_metrics(metrics, nets: EvalNets) -> tuple[str, ...]:
  metrics = tuple(metrics)
  unknown = sorted(set(metrics) - set(METRICS))
  if unknown or not metrics:
    raise ValueError(f"unknown metrics {unknown or metrics}; choose from {METRICS}")
  if {"rfid", "is"} & set(metrics) and nets.inception is None:
    raise ValueError("rfid and is need the FID Inception network (EvalNets.inception)")
  if "lpips" in metrics and nets.lpips is None:
    raise ValueError("lpips needs an LPIPS network (EvalNets.lpips)")
  return metrics


def inception_uint8(x):
  """TiTok's cast before Inception, in float32: (clip(x) * 255) truncated to uint8."""
  return (jnp.clip(x, 0.0, 1.0) * jnp.float32(255.0)).astype(jnp.uint8)


def quantize_reconstruction(x):
  """TiTok's eval_reconstruction: clamp to [0, 1] and round to multiples of 1 / 255."""
  return jnp.round(jnp.clip(x, 0.0, 1.0) * jnp.float32(255.0)) / jnp.float32(255.0)


def _batch_outputs(model, nets: EvalNets, images, num_tokens, *, metrics, model_inputs=None):
  """Everything one batch contributes, per image, computed on device.

  `num_tokens` None decodes every token; an int32 scalar keeps that many (flexible-length
  tokenizers), as data, so one compiled program serves every length. `model_inputs`: what
  the model's `host_inputs` made for these images (GPSToken's initialisation).
  """
  tokens = model.encode(images, **(model_inputs or {}))
  if num_tokens is None:
    decoded = model.decode(tokens)
  else:
    decoded = model.decode(tokens, num_tokens=jnp.full((images.shape[0],), num_tokens))
  recon = jnp.clip(decoded.astype(jnp.float32), 0.0, 1.0)
  out = {"recon": recon}
  if getattr(model, "has_gaussian_tokens", False):  # for the ellipse overlay picture
    out["tokens"] = tokens
  if "usage" in metrics and jnp.issubdtype(tokens.dtype, jnp.integer):
    out["ids"] = tokens
  if "psnr" in metrics:
    out["psnr"] = psnr(images, recon)
  if "ssim" in metrics:
    out["ssim"] = ssim(images, recon)
  if "lpips" in metrics:
    out["lpips"] = nets.lpips(images, recon)
  if {"rfid", "is"} & set(metrics):
    fake = nets.inception.features(inception_uint8(quantize_reconstruction(recon)))
    out["fake_pool"], out["fake_logits"] = fake["pool"], fake["logits"]
    if "rfid" in metrics:
      out["real_pool"] = nets.inception.features(inception_uint8(images))["pool"]
  return out


class _Accumulators:
  """Host-side sums of one process, mergeable across processes."""

  def __init__(self, metrics, codebook_size):
    self.metrics = metrics
    self.means = MeanMetrics()
    self.usage = CodebookUsage(codebook_size) if codebook_size and "usage" in metrics else None
    self.real = FeatureStatistics(POOL_DIM) if "rfid" in metrics else None
    self.fake = FeatureStatistics(POOL_DIM) if "rfid" in metrics else None
    self.logits = [] if "is" in metrics else None

  def update(self, out, keep):
    for name in ("psnr", "ssim", "lpips"):
      if name in out:
        self.means.update({name: out[name][keep]})
    if self.usage is not None and "ids" in out:
      self.usage.update(out["ids"][keep])
    if self.real is not None:
      self.real.update(out["real_pool"][keep])
      self.fake.update(out["fake_pool"][keep])
    if self.logits is not None:
      self.logits.append(out["fake_logits"][keep])

  def gathered(self):
    """(means, id counts, real stats, fake stats, logits) summed over all processes."""
    sums = {k: np.float64(v * self.means.counts[k]) for k, v in self.means.result().items()}
    counts = {k: np.int64(v) for k, v in self.means.counts.items()}
    id_counts = self.usage.counts if self.usage is not None else None
    stats = [s.state() if s is not None else None for s in (self.real, self.fake)]
    logits = np.concatenate(self.logits) if self.logits else None
    if jax.process_count() > 1:
      sums, counts, id_counts, stats = jax.tree.map(
          lambda x: np.asarray(multihost_utils.process_allgather(x)),
          (sums, counts, id_counts, stats))
      sums, counts, id_counts = jax.tree.map(lambda x: x.sum(0), (sums, counts, id_counts))
      stats = [_merge_gathered(s) for s in stats]
      logits = _gather_rows(logits) if logits is not None else None
    else:
      stats = [FeatureStatistics.from_state(s) if s is not None else None for s in stats]
    means = {k: float(sums[k] / counts[k]) for k in sums}
    return means, counts, id_counts, stats, logits


def _merge_gathered(state):
  if state is None:
    return None
  merged = FeatureStatistics(POOL_DIM)
  for i in range(len(state["count"])):
    merged.merge(FeatureStatistics.from_state({k: v[i] for k, v in state.items()}))
  return merged


def _gather_rows(rows):
  """Concatenates every process's rows (counts may differ) in process order."""
  counts = np.asarray(multihost_utils.process_allgather(np.int64(len(rows))))
  padded = np.zeros((int(counts.max()), *rows.shape[1:]), rows.dtype)
  padded[:len(rows)] = rows
  gathered = np.asarray(multihost_utils.process_allgather(padded))
  return np.concatenate([g[:c] for g, c in zip(gathered, counts)])


@functools.partial(jax.jit, static_argnames=("model_graph", "nets_graph", "metrics"))
def _run_batch(model_state, nets_state, images, num_tokens, model_inputs, *, model_graph,
               nets_graph, metrics):
  return _batch_outputs(nnx.merge(model_graph, model_state), nnx.merge(nets_graph, nets_state),
                        images, num_tokens, metrics=metrics, model_inputs=model_inputs)


def max_tokens(model) -> int | None:
  """The token count of a 1D tokenizer: TiTok's latent tokens, FlexTok's registers."""
  config = getattr(model, "config", None)
  for field in ("num_latent_tokens", "num_registers"):
    if getattr(config, field, None):
      return int(getattr(config, field))
  return None


def check_num_tokens(model, num_tokens: int | None):
  """A clear error unless `model` is flexible and 1 <= num_tokens <= its token count."""
  if num_tokens is None:
    return
  k_max = max_tokens(model)
  if "num_tokens" not in inspect.signature(model.decode).parameters or k_max is None:
    raise ValueError(f"{type(model).__name__} cannot decode a chosen number of tokens "
                     "(its decode has no num_tokens)")
  if not 1 <= num_tokens <= k_max:
    raise ValueError(f"num_tokens must be in [1, {k_max}]; got {num_tokens}")


def evaluate_reconstruction(model, batches, *, out_dir, metrics=("psnr", "ssim", "usage"),
                            nets: EvalNets | None = None,
                            reference_stats: GaussianStatistics | None = None,
                            num_batches=None, results_path=None, info=None,
                            num_tokens: int | None = None) -> dict:
  """Evaluates `model` on this process's `batches`, gathers all processes' results.

  Args:
    model: a tokenizer with encode/decode.
    batches: iterable of {"image": float [B, H, W, 3] in [0, 1], "mask": [B] bool (optional,
      False for padding)}, this process's share of the evaluation set.
    out_dir: where recon_grid.png and results.json go (written by process 0).
    metrics: any of METRICS.
    nets: the Inception / LPIPS networks the metrics need.
    reference_stats: real-image FID statistics to use instead of the evaluated images'.
    num_batches: for the progress bar.
    results_path: the JSON file (default <out_dir>/results.json).
    info: extra entries for the JSON (e.g. the protocol).
    num_tokens: decode only the first `num_tokens` tokens (flexible-length tokenizers).

  Returns:
    {metric: value, "num_images": N}; rfid also gives "fid_real_count".
  """
  nets = nets or EvalNets()
  metrics = check_metrics(metrics, nets)
  check_num_tokens(model, num_tokens)
  out_dir = pathlib.Path(out_dir)
  quantize = getattr(model, "quantize", None) or getattr(model, "codebook", None)
  acc = _Accumulators(metrics, getattr(quantize, "codebook_size", None))
  mesh = Mesh(np.asarray(jax.local_devices()), ("batch",))
  devices = mesh.size
  model_graph, model_state = nnx.split(model)
  # One placement for the whole state: a restored run may hold its buffers (an EMA codebook)
  # on one device and its weights on all of them.
  model_state = jax.device_put(model_state, NamedSharding(mesh, P()))
  nets_graph, nets_state = nnx.split(nets)
  run = functools.partial(_run_batch, model_graph=model_graph, nets_graph=nets_graph,
                          metrics=metrics)
  kept = None if num_tokens is None else np.int32(num_tokens)
  host_inputs = model.host_inputs() if hasattr(model, "host_inputs") else None

  grid_written = False
  for batch in tqdm.tqdm(batches, total=num_batches, desc="eval", dynamic_ncols=True,
                         disable=jax.process_index() != 0):
    images = np.asarray(batch["image"], np.float32)
    keep = np.asarray(batch.get("mask", np.ones(len(images), bool)), bool)
    rows = -(-len(images) // devices) * devices  # pad to split evenly over local devices
    padded = np.zeros((rows, *images.shape[1:]), np.float32)
    padded[:len(images)] = images
    rows_sharding = NamedSharding(mesh, P("batch"))
    sharded = jax.device_put(padded, rows_sharding)
    extra = jax.device_put(host_inputs_batch(host_inputs, padded), rows_sharding)
    out = jax.device_get(run(model_state, nets_state, sharded, kept, extra))
    out = {k: v[:len(images)] for k, v in out.items()}
    acc.update(out, keep)
    if not grid_written and jax.process_index() == 0 and keep.any():
      save_recon_grid(out_dir / "recon_grid.png", images[keep], out["recon"][keep])
      if "tokens" in out:
        save_token_overlay(out_dir / "token_overlay.png", images[keep], out["tokens"][keep],
                           out["recon"][keep])
      grid_written = True

  means, counts, id_counts, (real, fake), logits = acc.gathered()
  results = dict(means)
  num_images = int(max(counts.values(), default=0))
  if fake is not None:
    real_stats = reference_stats or real.result()
    fake_stats = fake.result()
    results["rfid"] = frechet_distance(real_stats.mu, real_stats.sigma, fake_stats.mu,
                                       fake_stats.sigma)
    results["fid_real_count"] = int(real_stats.count)
    num_images = fake.count
  if logits is not None:
    score = InceptionScore(logits.shape[-1])
    score.update(logits)
    results.update(score.result())
    num_images = len(logits)
  if id_counts is not None:
    usage = CodebookUsage(len(id_counts))
    usage.counts[:] = id_counts
    results.update(usage.result())
  results["num_images"] = num_images
  if num_tokens is not None:
    results["num_tokens"] = int(num_tokens)
  results.update(info or {})
  if jax.process_index() == 0:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = pathlib.Path(results_path) if results_path else out_dir / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
  return results
