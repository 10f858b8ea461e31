"""The training loop every tokenizer shares: one jitted step over a (data, fsdp, model) mesh.

State is a plain pytree {step, params, opt_state, ema, rng} so that jit shardings, donation and
Orbax see exactly what is trained. The same code runs on one CPU, N fake devices or a pod.
"""
import functools
import inspect
import pathlib
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from models.quantizers.reanchor import reanchor_codebook
from pallas_kernels import set_default_impl
from zoo.data import host_inputs_batch, make_eval_batches, make_image_dataset
from zoo.evals import MeanMetrics, psnr, save_recon_grid, ssim
from zoo.train import audio, joint, sharding, video
from zoo.train.audio_gan import audio_discriminator_update, audio_generator_adversarial_loss
from zoo.train.adaptive_gan import adaptive_gan_grads
from zoo.train.checkpointing import Checkpointer
from zoo.train.ema import update_ema
from zoo.train.discriminator import (discriminator_update, gan_loss_config,
                                     generator_adversarial_loss, make_discriminator_optimizer)
from zoo.train.gan_losses import discriminator_factor
from zoo.train.frozen_nets import create_frozen_nets, create_teacher_model, perceptual_weights
from zoo.train.losses import per_image_cross_entropy, proxy_code_loss, reconstruction_loss
from zoo.train.metrics_writer import MetricsWriter
from zoo.train.model_state import merge_model
from zoo.train.optimizer import learning_rate_schedule, make_optimizer, stop_frozen_gradients
from zoo.train.perceptual_loss import perceptual_loss
from zoo.train.train_state import (audio_gan, build_discriminator, create_sharded_state,
                                   discriminator_optimizer)
from zoo.train.video_gan import (is_video_gan, video_discriminator_update,
                                 video_generator_adversarial_loss)
from zoo.train.warm_start import load_pixel_decoder, load_stage1_weights


def accumulated_grads(loss_fn, params, batch, rng, num_micro: int):
  """Mean metrics and gradients over `num_micro` micro-batches, one at a time.

  `loss_fn(params, batch, rng) -> (loss, (metrics, extras))`: `batch` is an array or a
  pytree of arrays with the batch axis first; metrics are averaged, extras (per-example
  arrays) are concatenated back into batch order.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if num_micro == 1:
    (_, (metrics, extras)), grads = grad_fn(params, batch, rng)
    return metrics, extras, grads
  rows = jax.tree.leaves(batch)[0].shape[0]
  if rows % num_micro:
    raise ValueError(f"batch {rows} does not split into {num_micro} micro-batches")
  # Row i of micro-batch m is row i * num_micro + m: every micro-batch spans all devices.
  micro = jax.tree.map(lambda t: jnp.swapaxes(
      t.reshape(rows // num_micro, num_micro, *t.shape[1:]), 0, 1), batch)

  def body(carry, xs):
    batch_m, m = xs
    (_, (metrics, extras)), grads = grad_fn(params, batch_m, jax.random.fold_in(rng, m))
    return jax.tree.map(jnp.add, carry, (metrics, grads)), extras

  first = jax.tree.map(lambda t: t[0], micro)
  (_, (metrics, _)), grads = jax.eval_shape(grad_fn, params, first, rng)
  zeros = jax.tree.map(jnp.zeros_like, (metrics, grads))
  (metrics, grads), extras = jax.lax.scan(body, zeros, (micro, jnp.arange(num_micro)))
  # [num_micro, B / num_micro, ...] -> [B, ...] in the original row order.
  extras = jax.tree.map(lambda t: jnp.swapaxes(t, 0, 1).reshape(-1, *t.shape[2:]), extras)
  metrics, grads = jax.tree.map(lambda t: t / num_micro, (metrics, grads))
  return metrics, extras, grads


def proxy_codes(teacher_graphdef, teacher_params, images):
  teacher = nnx.merge(teacher_graphdef, teacher_params)
  _, aux = teacher.quantize(teacher.encoder(images))
  return jax.lax.stop_gradient(aux["ids"].reshape(images.shape[0], -1))


def split_batch(batch):
  """A training batch -> (images, model inputs): an images array, or a dict with "image" and
  the inputs a model takes besides it (GPSToken's initial Gaussians and RoIs)."""
  if isinstance(batch, dict):
    return batch["image"], {k: v for k, v in batch.items() if k != "image"}
  return batch, {}


def adaptive_gan_layer(config) -> str:
  """The parameter path of taming's adaptive GAN weight (`gan.adaptive_weight_layer`), or ""."""
  return config.gan.get("adaptive_weight_layer", "") if config.gan.enabled else ""


def generator_loss(model, batch, rng, step, nets, disc_params, *, config, disc_graphdef):
  """The model's loss for its config: stage-1 proxy codes, or pixels (+ perceptual + GAN).

  `disc_graphdef` None: no adversarial term (before the GAN starts, or no GAN at all). With an
  adaptive GAN weight the returned loss leaves the GAN term out (metrics["gan_loss"] holds
  it unweighted) for `adaptive_gan_grads` to weigh."""
  images, model_inputs = split_batch(batch)
  if "progress" in inspect.signature(model.__call__).parameters:  # LARP's scheduled sampling
    model_inputs = dict(model_inputs, progress=step / max(config.total_steps, 1))
  out = model(images, train=True, rngs=nnx.Rngs(sample=rng), **model_inputs)
  if audio.is_audio_model(model.config):
    loss, metrics = audio.audio_reconstruction_loss(out, images, config.loss,
                                                    model.config.sample_rate)
    if disc_graphdef is not None:
      adversarial, gan_metrics = audio_generator_adversarial_loss(
          disc_graphdef, disc_params, out["recon"], images, config.gan)
      loss += adversarial
      metrics.update(gan_metrics, loss=loss)
    return (loss, metrics), out
  if "teacher" in nets:
    return proxy_code_loss(out, proxy_codes(*nets["teacher"], images), config.loss), out
  loss, metrics = reconstruction_loss(out, images, config.loss)
  weights = perceptual_weights(config)
  if weights:
    # Videos: the perceptual networks see every frame (LARP's per-frame LPIPS).
    frames = lambda v: v.reshape(-1, *v.shape[2:]) if v.ndim == 5 else v
    p_loss, p_metrics = perceptual_loss(
        frames(out["recon"]), frames(images), {k: nnx.merge(*nets[k]) for k in weights},
        weights)
    loss += config.loss.perceptual * p_loss
    metrics.update(p_metrics)
  if disc_graphdef is not None and is_video_gan(config):
    gan, gan_metrics = video_generator_adversarial_loss(disc_graphdef, disc_params,
                                                        out["recon"], config.gan)
    loss += gan
    metrics.update(gan_metrics)
  elif disc_graphdef is not None:
    gan, gan_metrics = generator_adversarial_loss(disc_graphdef, disc_params, out["recon"],
                                                  step, gan_loss_config(config))
    if not adaptive_gan_layer(config):
      loss += gan
    metrics.update(gan_metrics)
  metrics["loss"] = loss
  return (loss, metrics), out


def train_step(state, batch, net_params, *, graphdef, rest, net_graphdefs, disc_graphdef,
               schedule, config, update_discriminator: bool = True):
  """One update of the model (and of the discriminator when `disc_graphdef` is given and
  `update_discriminator`: the video GAN updates it every `gan.update_every` steps).

  `batch`: images, or a dict of images and model inputs (`split_batch`)."""
  rng = jax.random.fold_in(state["rng"], state["step"])
  nets = {k: (net_graphdefs[k], net_params[k]) for k in net_graphdefs}
  optimizer = make_optimizer(config, frozen=config.frozen)
  extras_keys = ("features", "ids") if config.codebook_reanchor else ()
  extras_keys += ("recon",) if disc_graphdef is not None else ()

  def loss_fn(params, batch, rng):
    params = stop_frozen_gradients(params, config.frozen)
    model = merge_model(graphdef, params, rest, state.get("batch_stats"))
    (loss, metrics), out = generator_loss(
        model, batch, rng, state["step"], nets, state.get("disc_params"), config=config,
        disc_graphdef=disc_graphdef)
    extras = {k: out[k] for k in extras_keys}
    if "batch_stats" in state:  # the buffers after this forward (EMA codebook updates)
      extras["batch_stats"] = jax.lax.stop_gradient(nnx.state(model, nnx.BatchStat))
    return loss, (metrics, extras)

  if disc_graphdef is not None and adaptive_gan_layer(config):
    if config.grad_accum_steps > 1:
      raise ValueError("the adaptive GAN weight is computed per batch: grad_accum_steps 1")

    def parts_fn(params):
      nll, (metrics, extras) = loss_fn(params, batch, rng)
      return (nll, metrics["gan_loss"]), (metrics, extras)

    gan_cfg = gan_loss_config(config)
    loss, d_weight, grads, (metrics, extras) = adaptive_gan_grads(
        parts_fn, state["params"], last_layer=adaptive_gan_layer(config),
        discriminator_weight=gan_cfg.discriminator_weight,
        factor=discriminator_factor(state["step"], gan_cfg))
    metrics = {**metrics, "loss": loss, "adaptive_gan_weight": d_weight}
  else:
    metrics, extras, grads = accumulated_grads(loss_fn, state["params"], batch, rng,
                                               config.grad_accum_steps)
  images = split_batch(batch)[0]
  updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  new_state = dict(state, step=state["step"] + 1, opt_state=opt_state)
  if "batch_stats" in state:
    new_state["batch_stats"] = extras["batch_stats"]
  if config.codebook_reanchor:
    model = merge_model(graphdef, params, rest, new_state.get("batch_stats"))
    codebook, usage = reanchor_codebook(
        model.quantize.embedding[...], state["codebook_usage"], extras["features"],
        extras["ids"], use_l2_norm=model.quantize.use_l2_norm)
    params["quantize"]["embedding"] = params["quantize"]["embedding"].replace(codebook)
    new_state["codebook_usage"] = usage
  new_state.update(params=params, ema=update_ema(state["ema"], params, config.ema_decay))
  if disc_graphdef is not None and audio_gan(config):
    disc_state, disc_metrics = audio_discriminator_update(
        state, images, extras["recon"], graphdef=disc_graphdef,
        optimizer=discriminator_optimizer(config), gan=config.gan)
  elif disc_graphdef is not None and is_video_gan(config):
    disc_state, disc_metrics = {}, {}
    if update_discriminator:
      disc_state, disc_metrics = video_discriminator_update(
          state, images, extras["recon"], jax.random.fold_in(rng, 7), graphdef=disc_graphdef,
          optimizer=discriminator_optimizer(config), gan=config.gan)
  elif disc_graphdef is not None:
    disc_state, disc_metrics = discriminator_update(
        state, images, extras["recon"], state["step"], graphdef=disc_graphdef,
        optimizer=make_discriminator_optimizer(config), cfg=gan_loss_config(config))
  if disc_graphdef is not None:
    new_state.update(disc_state)
    metrics = {**metrics, **disc_metrics}
  metrics = {**metrics, "grad_norm": optax.tree.norm(grads),
             "learning_rate": schedule(state["step"])}
  return new_state, metrics


def reconstruct(params, batch, net_params, batch_stats=None, *, graphdef, rest,
                teacher_graphdef=None):
  """Pixel evaluation: clipped reconstructions and per-image PSNR / SSIM."""
  del net_params, teacher_graphdef
  model = merge_model(graphdef, params, rest, batch_stats)
  images, model_inputs = split_batch(batch)
  recon = model(images, train=False, **model_inputs)["recon"]
  recon = jnp.clip(recon.astype(jnp.float32), 0.0, 1.0)
  return recon, {"psnr": psnr(images, recon), "ssim": ssim(images, recon)}


def predict_proxy_codes(params, images, net_params, batch_stats=None, *, graphdef, rest,
                        teacher_graphdef):
  """Stage-1 evaluation: per-image cross-entropy and accuracy against the teacher's codes."""
  model = merge_model(graphdef, params, rest, batch_stats)
  logits = model(images, train=False)["logits"].astype(jnp.float32)
  logits = logits.reshape(logits.shape[0], -1, logits.shape[-1])
  ids = proxy_codes(teacher_graphdef, net_params["teacher"], images)
  return None, {"proxy_ce": per_image_cross_entropy(logits, ids),
                "proxy_accuracy": jnp.mean(jnp.argmax(logits, -1) == ids, axis=1)}


def evaluate_batch(params, batch, valid, net_params, batch_stats, *, predict):
  """`predict` on a batch sharded over all devices; results come back whole on every process."""
  outputs, metrics = predict(params, batch, net_params, batch_stats)
  return split_batch(batch)[0], valid, outputs, metrics


class Trainer:

  def __init__(self, config, workdir):
    self.config = config
    self.workdir = pathlib.Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:  # eval.py rebuilds the model and state layout from it.
      (self.workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
    self.mesh = sharding.make_mesh(config.mesh)
    set_default_impl(config.get("kernel_impl") or None)  # before anything is traced
    nets = create_frozen_nets(config)
    self.graphdef, self.rest, self.state, self.state_sharding = create_sharded_state(
        config, self.mesh)
    model = merge_model(self.graphdef, self.state["params"], self.rest,
                        self.state.get("batch_stats"))
    self.model_config = model.config
    self.is_audio = audio.is_audio_model(model.config)
    self.is_video = video.is_video_model(model.config)
    self.is_joint = joint.is_joint_model(model.config)  # images and videos in one stream
    # Inputs a model needs besides the image (GPSToken's initialisation), made on the host:
    # by the data pipeline for training, per eval batch for evaluation.
    self.host_inputs = model.host_inputs() if hasattr(model, "host_inputs") else None
    self._warm_start()

    replicated = sharding.replicated(self.mesh)
    net_graphdefs = {k: graphdef for k, (graphdef, _) in nets.items()}
    self.net_params = jax.device_put({k: params for k, (_, params) in nets.items()}, replicated)
    disc_graphdef = build_discriminator(config, model.config)[0] if config.gan.enabled else None
    step_fn = functools.partial(train_step, graphdef=self.graphdef, rest=self.rest,
                                net_graphdefs=net_graphdefs, schedule=learning_rate_schedule(config),
                                config=config)
    jit_step = functools.partial(
        jax.jit, in_shardings=(self.state_sharding, sharding.batch_sharding(self.mesh), replicated),
        out_shardings=(self.state_sharding, replicated), donate_argnums=0)
    # Before discriminator_start the GAN is off: a program without it, not a lax.cond; the
    # same for the video discriminator's update interval.
    self._train_steps = {(False, False): jit_step(functools.partial(step_fn, disc_graphdef=None))}
    if disc_graphdef is not None:
      self._train_steps[True, True] = jit_step(functools.partial(step_fn,
                                                                 disc_graphdef=disc_graphdef))
      if is_video_gan(config):
        self._train_steps[True, False] = jit_step(functools.partial(
            step_fn, disc_graphdef=disc_graphdef, update_discriminator=False))

    predict = (predict_proxy_codes if "teacher" in nets else
               joint.reconstruct_joint if self.is_joint else
               audio.reconstruct_audio if self.is_audio else
               video.reconstruct_video if self.is_video else reconstruct)
    predict = functools.partial(predict, graphdef=self.graphdef, rest=self.rest,
                                teacher_graphdef=net_graphdefs.get("teacher"))
    batch = sharding.batch_sharding(self.mesh)
    self._evaluate_batch = jax.jit(
        functools.partial(evaluate_batch, predict=predict),
        in_shardings=(self.state_sharding["params"], batch, batch, replicated, replicated),
        out_shardings=replicated)

    if config.batch_size % jax.process_count():
      raise ValueError(f"batch_size {config.batch_size} is not divisible by "
                       f"{jax.process_count()} processes")
    if self.is_audio:
      self.train_data = audio.make_train_stream(config, model, process_index=jax.process_index(),
                                                process_count=jax.process_count())
      self.eval_batches = audio.make_eval_clips(config, model)
    elif self.is_joint:
      self.train_data = joint.make_train_stream(config, model, process_index=jax.process_index(),
                                                process_count=jax.process_count())
      self.eval_batches = joint.make_eval_batches_joint(config, model)
    elif self.is_video:
      self.train_data = video.make_train_stream(config, model, process_index=jax.process_index(),
                                                process_count=jax.process_count())
      self.eval_batches = video.make_eval_clips(config, model)
    else:
      image_size = model.config.image_size
      self.train_data = iter(make_image_dataset(
          config.data, image_size=image_size,
          batch_size=config.batch_size // jax.process_count(),
          train=True, seed=config.seed, process_index=jax.process_index(),
          process_count=jax.process_count(), extra_inputs=self.host_inputs,
          num_workers=config.get("data_workers", 0)))
      self.eval_batches = make_eval_batches(
          config.eval_data, image_size=image_size, batch_size=config.eval_batch_size,
          num_images=config.num_eval_images)
    # The eval set is fixed: its host-side model inputs are made once.
    self.eval_inputs = [host_inputs_batch(self.host_inputs, b) for b in self.eval_batches]
    self.checkpointer = Checkpointer(self.workdir / "checkpoints",
                                     every_steps=config.checkpoint_every,
                                     keep=config.keep_checkpoints)
    self.writer = MetricsWriter(self.workdir)

  def _warm_start(self):
    """Stage 2: the stage-1 run's weights, then the VQGAN's quantizer and pixel decoder."""
    params = self.state["params"]
    if self.config.init_from:
      params = load_stage1_weights(params, self.config.init_from)
    if self.config.pixel_decoder_from_teacher:
      params = load_pixel_decoder(params, create_teacher_model(self.config))
    if self.config.get("base_from"):  # a halting head's frozen base tokenizer
      from zoo.train.warm_start import load_base_tokenizer
      params = load_base_tokenizer(params, self.config.base_from)
    if params is not self.state["params"]:
      self.state["params"] = params
      self.state["ema"] = jax.tree.map(jnp.copy, params)  # the EMA starts at the weights

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

  def train_step_fn(self, step: int):
    """The compiled step for the update after `step` (with the GAN from its start on)."""
    gan = self.config.gan.enabled and step >= self.config.gan.discriminator_start
    update = gan and (not is_video_gan(self.config)
                      or step % self.config.gan.get("update_every", 1) == 0)
    return self._train_steps[gan, update]

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
    for i, batch in enumerate(self.eval_batches):
      images, valid = sharding.shard_eval_batch(batch, self.mesh)
      extra = self.eval_inputs[i]
      if extra:  # a dict batch (`split_batch`), each input padded and sharded like the images
        images = {"image": images, **{k: sharding.shard_eval_batch(v, self.mesh)[0]
                                      for k, v in extra.items()}}
      images, valid, recon, metrics = jax.device_get(self._evaluate_batch(
          self.state[params_key], images, valid, self.net_params, self.state.get("batch_stats")))
      means.update({k: v[valid] for k, v in metrics.items()})
      if i == 0 and recon is not None and grid_path is not None and jax.process_index() == 0:
        if self.is_audio:  # a WAV pair and their spectrograms
          audio.save_audio_example(grid_path.parent, grid_path.stem, images[valid], recon[valid],
                                   self.model_config.sample_rate)
        elif self.is_video or images.ndim == 5:  # an MP4 side by side and a frame grid
          video.save_video_example(grid_path.parent, grid_path.stem, images[valid], recon[valid])
        else:
          save_recon_grid(grid_path, images[valid], recon[valid])
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
      batch = next(self.train_data)
      if self.is_audio or self.is_video or self.is_joint:
        inputs = sharding.global_batch(batch["audio" if self.is_audio else "video"], self.mesh)
      elif batch.keys() - {"image", "mask"}:  # with model inputs: a dict (`split_batch`)
        inputs = {k: sharding.global_batch(v, self.mesh) for k, v in batch.items()
                  if k != "mask"}
      else:
        inputs = sharding.global_batch(batch["image"], self.mesh)
      self.state, metrics = self.train_step_fn(step)(self.state, inputs, self.net_params)
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
                         if k in ("eval/psnr", "eval/image_psnr", "eval/proxy_ce",
                                  "eval/si_sdr")})
      stop = self._should_stop()
      self.checkpointer.save(step, self.state, self.train_data, force=step == until or stop)
      if stop:
        bar.write(f"stopping at step {step} on SIGTERM; saved a checkpoint")
        break
    bar.close()
    self.checkpointer.wait()
    self.checkpointer.close()
    return self.state
