"""The training loop every tokenizer shares: one jitted step over a (data, fsdp, model) mesh.

State is a plain pytree {step, params, opt_state, ema, rng} so that jit shardings, donation and
Orbax see exactly what is trained. The same code runs on one CPU, N fake devices or a pod.
"""
import functools
import json
import pathlib
import signal
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from models.quantizers.reanchor import reanchor_codebook
from zoo import registry
from zoo.data import make_eval_batches, make_image_dataset
from zoo.evals import MeanMetrics, psnr, save_recon_grid, ssim
from zoo.train import sharding
from zoo.train.checkpointing import Checkpointer
from zoo.train.ema import update_ema
from zoo.train.losses import per_image_cross_entropy, proxy_code_loss, reconstruction_loss
from zoo.train.metrics_writer import MetricsWriter
from zoo.train.optimizer import learning_rate_schedule, make_optimizer


def init_state(model: nnx.Module, optimizer, seed: int, *, codebook_reanchor: bool = False):
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  state = {
      "step": jnp.zeros((), jnp.int32),
      "params": params,
      "opt_state": optimizer.init(params),
      "ema": jax.tree.map(jnp.copy, params),
      "rng": jax.random.PRNGKey(seed),
  }
  if codebook_reanchor:
    if getattr(model, "quantize", None) is None:
      raise ValueError("codebook_reanchor needs a model with a VQ codebook")
    state["codebook_usage"] = jnp.zeros((model.quantize.codebook_size,), jnp.float32)
  return graphdef, rest, state


def state_shardings(state, optimizer, mesh):
  """Parameters and EMA by their logical axes, Adam moments like their parameters."""
  params = sharding.param_shardings(state["params"], mesh)
  return {
      "step": sharding.replicated(mesh),
      "params": params,
      "opt_state": sharding.optimizer_shardings(optimizer, state["opt_state"], params, mesh),
      "ema": params,
      "rng": sharding.replicated(mesh),
      **({"codebook_usage": sharding.replicated(mesh)} if "codebook_usage" in state else {}),
  }


def create_model(config) -> nnx.Module:
  return registry.create(config.model, seed=config.seed, dtype=jnp.dtype(config.dtype),
                         **config.model_overrides.to_dict())


def accumulated_grads(loss_fn, params, images, rng, num_micro: int):
  """Mean metrics and gradients over `num_micro` micro-batches, one at a time.

  `loss_fn(params, images, rng) -> (loss, (metrics, extras))`: metrics are averaged, extras
  (per-example arrays) are concatenated back into batch order.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if num_micro == 1:
    (_, (metrics, extras)), grads = grad_fn(params, images, rng)
    return metrics, extras, grads
  if images.shape[0] % num_micro:
    raise ValueError(f"batch {images.shape[0]} does not split into {num_micro} micro-batches")
  # Row i of micro-batch m is row i * num_micro + m: every micro-batch spans all devices.
  micro = images.reshape(images.shape[0] // num_micro, num_micro, *images.shape[1:])
  micro = jnp.swapaxes(micro, 0, 1)

  def body(carry, xs):
    images_m, m = xs
    (_, (metrics, extras)), grads = grad_fn(params, images_m, jax.random.fold_in(rng, m))
    return jax.tree.map(jnp.add, carry, (metrics, grads)), extras

  (_, (metrics, _)), grads = jax.eval_shape(grad_fn, params, micro[0], rng)
  zeros = jax.tree.map(jnp.zeros_like, (metrics, grads))
  (metrics, grads), extras = jax.lax.scan(body, zeros, (micro, jnp.arange(num_micro)))
  # [num_micro, B / num_micro, ...] -> [B, ...] in the original row order.
  extras = jax.tree.map(lambda t: jnp.swapaxes(t, 0, 1).reshape(-1, *t.shape[2:]), extras)
  metrics, grads = jax.tree.map(lambda t: t / num_micro, (metrics, grads))
  return metrics, extras, grads


def create_teacher(config):
  """The frozen proxy-code teacher of stage 1 as (graphdef, params), or None."""
  if config.objective == "pixels":
    return None
  if config.objective != "proxy_codes":
    raise ValueError(f"unknown objective {config.objective!r}; 'pixels' or 'proxy_codes'")
  overrides = config.teacher_overrides.to_dict()
  if config.teacher_checkpoint:
    teacher = registry.from_pretrained(config.teacher, config.teacher_checkpoint, **overrides)
  else:  # Only sensible for the tiny CPU configs: a random but fixed teacher.
    logging.warning("no teacher_checkpoint: stage 1 distils a randomly initialised %s",
                    config.teacher)
    teacher = registry.create(config.teacher, seed=config.seed + 1, **overrides)
  graphdef, params = nnx.split(teacher)
  return graphdef, params


def proxy_codes(teacher_graphdef, teacher_params, images):
  teacher = nnx.merge(teacher_graphdef, teacher_params)
  _, aux = teacher.quantize(teacher.encoder(images))
  return jax.lax.stop_gradient(aux["ids"].reshape(images.shape[0], -1))


def train_step(state, images, teacher_params, *, graphdef, rest, optimizer, schedule, config,
               teacher_graphdef=None):
  rng = jax.random.fold_in(state["rng"], state["step"])

  def loss_fn(params, images, rng):
    model = nnx.merge(graphdef, params, rest)
    out = model(images, train=True, rngs=nnx.Rngs(sample=rng))
    if teacher_graphdef is None:
      loss, metrics = reconstruction_loss(out, images, config.loss)
    else:
      loss, metrics = proxy_code_loss(
          out, proxy_codes(teacher_graphdef, teacher_params, images), config.loss)
    extras = {k: out[k] for k in ("features", "ids")} if config.codebook_reanchor else {}
    return loss, (metrics, extras)

  metrics, extras, grads = accumulated_grads(loss_fn, state["params"], images, rng,
                                             config.grad_accum_steps)
  updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  extra_state = {}
  if config.codebook_reanchor:
    model = nnx.merge(graphdef, params, rest)
    codebook, usage = reanchor_codebook(
        model.quantize.embedding[...], state["codebook_usage"], extras["features"],
        extras["ids"], use_l2_norm=model.quantize.use_l2_norm)
    params["quantize"]["embedding"] = params["quantize"]["embedding"].replace(codebook)
    extra_state["codebook_usage"] = usage
  metrics = {**metrics, "grad_norm": optax.tree.norm(grads),
             "learning_rate": schedule(state["step"])}
  new_state = {
      "step": state["step"] + 1,
      "params": params,
      "opt_state": opt_state,
      "ema": update_ema(state["ema"], params, config.ema_decay),
      "rng": state["rng"],
      **extra_state,
  }
  return new_state, metrics


def reconstruct(params, images, *, graphdef, rest):
  model = nnx.merge(graphdef, params, rest)
  recon = jnp.clip(model(images, train=False)["recon"].astype(jnp.float32), 0.0, 1.0)
  return recon, {"psnr": psnr(images, recon), "ssim": ssim(images, recon)}


def predict_proxy_codes(params, images, teacher_params, *, graphdef, rest, teacher_graphdef):
  """Stage-1 evaluation: per-image cross-entropy and accuracy against the teacher's codes."""
  logits = nnx.merge(graphdef, params, rest)(images, train=False)["logits"].astype(jnp.float32)
  logits = logits.reshape(logits.shape[0], -1, logits.shape[-1])
  ids = proxy_codes(teacher_graphdef, teacher_params, images)
  return None, {"proxy_ce": per_image_cross_entropy(logits, ids),
                "proxy_accuracy": jnp.mean(jnp.argmax(logits, -1) == ids, axis=1)}


def load_trained_model(workdir, *, weights: str = "ema", step: int | None = None) -> nnx.Module:
  """The model of a training run with its `weights` ("ema" or "params") from the checkpoint."""
  workdir = pathlib.Path(workdir)
  config_file = workdir / "config.json"
  if not config_file.is_file():
    raise FileNotFoundError(f"{workdir} is not a training workdir (no config.json)")
  if weights not in ("ema", "params"):
    raise ValueError(f"weights must be 'ema' or 'params', got {weights!r}")
  config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  model = create_model(config)
  graphdef, rest, state = init_state(model, make_optimizer(config), config.seed,
                                     codebook_reanchor=config.get("codebook_reanchor", False))
  checkpointer = Checkpointer(workdir / "checkpoints", every_steps=1, keep=1)
  if checkpointer.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}")
  state = checkpointer.restore_state(state, step)
  checkpointer.close()
  return nnx.merge(graphdef, state[weights], rest)


class Trainer:

  def __init__(self, config, workdir):
    self.config = config
    self.workdir = pathlib.Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:  # eval.py rebuilds the model and state layout from it.
      (self.workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
    self.mesh = sharding.make_mesh(config.mesh)
    model = create_model(config)
    self.image_size = model.config.image_size
    self.optimizer = make_optimizer(config)
    self.graphdef, self.rest, state = init_state(model, self.optimizer, config.seed,
                                                 codebook_reanchor=config.codebook_reanchor)
    self.state_sharding = state_shardings(state, self.optimizer, self.mesh)
    self.state = jax.device_put(state, self.state_sharding)

    batch = sharding.batch_sharding(self.mesh)
    teacher = create_teacher(config)
    teacher_graphdef, teacher_params = teacher if teacher else (None, {})
    self.teacher_params = jax.device_put(teacher_params, sharding.replicated(self.mesh))
    self._train_step = jax.jit(
        functools.partial(train_step, graphdef=self.graphdef, rest=self.rest,
                          optimizer=self.optimizer, schedule=learning_rate_schedule(config),
                          config=config, teacher_graphdef=teacher_graphdef),
        in_shardings=(self.state_sharding, batch, sharding.replicated(self.mesh)),
        out_shardings=(self.state_sharding, sharding.replicated(self.mesh)),
        donate_argnums=0)
    if teacher is None:
      self._evaluate_batch = jax.jit(functools.partial(
          reconstruct, graphdef=self.graphdef, rest=self.rest))
    else:
      self._evaluate_batch = jax.jit(functools.partial(
          predict_proxy_codes, teacher_params=self.teacher_params, graphdef=self.graphdef,
          rest=self.rest, teacher_graphdef=teacher_graphdef))

    if config.batch_size % jax.process_count():
      raise ValueError(f"batch_size {config.batch_size} is not divisible by "
                       f"{jax.process_count()} processes")
    self.train_data = iter(make_image_dataset(
        config.data, image_size=self.image_size,
        batch_size=config.batch_size // jax.process_count(),
        train=True, seed=config.seed, process_index=jax.process_index(),
        process_count=jax.process_count()))
    self.eval_batches = make_eval_batches(
        config.eval_data, image_size=self.image_size, batch_size=config.eval_batch_size,
        num_images=config.num_eval_images)
    self.checkpointer = Checkpointer(self.workdir / "checkpoints",
                                     every_steps=config.checkpoint_every,
                                     keep=config.keep_checkpoints)
    self.writer = MetricsWriter(self.workdir)

  def _install_preemption_handler(self):
    """SIGTERM (preemption) asks the loop to save and return after the current step."""
    self._stop_requested = False
    if threading.current_thread() is threading.main_thread():
      signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop_requested", True))

  def _should_stop(self) -> bool:
    if jax.process_count() == 1:
      return self._stop_requested
    # Every process must stop at the same step, whichever one received the signal.
    return bool(multihost_utils.process_allgather(np.asarray(self._stop_requested)).any())

  @property
  def step(self) -> int:
    return int(self.state["step"])

  def restore_if_any(self) -> bool:
    if self.checkpointer.latest_step() is None:
      return False
    self.state = self.checkpointer.restore(self.state, self.train_data)
    return True

  def evaluate(self, params_key: str = "params", *, grid_path=None) -> dict:
    means = MeanMetrics()
    for i, images in enumerate(self.eval_batches):
      # numpy in: every process passes the same images, a replicated global input.
      recon, metrics = self._evaluate_batch(self.state[params_key], images)
      means.update({k: np.asarray(v) for k, v in metrics.items()})
      if i == 0 and recon is not None and grid_path is not None and jax.process_index() == 0:
        save_recon_grid(grid_path, images, np.asarray(recon))
    return means.result()

  def log_eval(self):
    grid = self.workdir / "recon" / f"step_{self.step:07d}.png"
    metrics = {f"eval/{k}": v for k, v in self.evaluate(grid_path=grid).items()}
    metrics.update({f"eval/ema_{k}": v for k, v in self.evaluate("ema").items()})
    self.writer.write(self.step, metrics)
    return metrics

  def train(self, *, until: int | None = None):
    """Trains to `config.total_steps`, or stops after step `until` (an interrupted run)."""
    config = self.config
    until = config.total_steps if until is None else min(until, config.total_steps)
    self._install_preemption_handler()
    if not self.restore_if_any():
      self.log_eval()  # the step-0 baseline
    bar = tqdm.tqdm(total=config.total_steps, initial=self.step, desc="train",
                    disable=jax.process_index() != 0, dynamic_ncols=True)
    last = time.perf_counter()
    step = self.step  # a host-side counter: reading state["step"] would sync every step
    while step < until:
      images = sharding.global_batch(next(self.train_data)["image"], self.mesh)
      self.state, metrics = self._train_step(self.state, images, self.teacher_params)
      step += 1
      bar.update(1)
      if step % config.log_every == 0 or step == config.total_steps:
        now = time.perf_counter()
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        metrics["steps_per_sec"] = config.log_every / (now - last)
        last = now
        if not np.isfinite(metrics["loss"]):
          raise FloatingPointError(f"loss is {metrics['loss']} at step {step}")
        self.writer.write(step, metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}")
      if step % config.eval_every == 0 or step == config.total_steps:
        bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in self.log_eval().items()
                         if k in ("eval/psnr", "eval/proxy_ce")})
      stop = self._should_stop()
      self.checkpointer.save(step, self.state, self.train_data, force=step == until or stop)
      if stop:
        bar.write(f"stopping at step {step} on SIGTERM; saved a checkpoint")
        break
    bar.close()
    self.checkpointer.wait()
    self.checkpointer.close()
    return self.state
