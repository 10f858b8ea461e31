"""FSDP and tensor parallelism: memory per device shrinks, losses stay those of data parallel."""
import jax
import numpy as np
import pytest

from zoo.train import sharding
from zoo.train.metrics_writer import read_metrics
from zoo.train.trainer import Trainer
from zoo.train.train_state import sharded_state_initializer
from tests.test_train import tiny_config


def run(tmp_path, name, **mesh):
  config = tiny_config(total_steps=3, eval_every=100, checkpoint_every=100)
  config.mesh.update(mesh)
  trainer = Trainer(config, tmp_path / name)
  state_bytes = {k: sharding.bytes_per_device(trainer.state[k]) for k in ("params", "opt_state")}
  trainer.train()
  return trainer, state_bytes, [r["loss"] for r in read_metrics(tmp_path / name) if "loss" in r]


def test_fsdp_shrinks_memory_and_matches_data_parallel(tmp_path):
  assert jax.device_count() == 8
  dp, dp_bytes, dp_losses = run(tmp_path, "dp", data=-1)
  fsdp, fsdp_bytes, fsdp_losses = run(tmp_path, "fsdp", data=1, fsdp=8)
  for key in ("params", "opt_state"):
    # Small tensors (norms, biases) stay replicated, so a bit more than 1/8 remains.
    assert fsdp_bytes[key] < 0.2 * dp_bytes[key], (key, fsdp_bytes[key], dp_bytes[key])
  np.testing.assert_allclose(fsdp_losses, dp_losses, rtol=1e-5)
  kernel = fsdp.state["params"]["decoder"]["transformer"][0]["mlp"]["c_fc"]["kernel"]
  assert "fsdp" in str(kernel.sharding.spec)


def test_tensor_parallel_shards_mlp_and_matches_data_parallel(tmp_path):
  _, _, dp_losses = run(tmp_path, "dp", data=-1)
  tp, _, tp_losses = run(tmp_path, "tp", data=4, model=2)
  kernel = tp.state["params"]["encoder"]["transformer"][0]["mlp"]["c_fc"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "model")
  np.testing.assert_allclose(tp_losses, dp_losses, rtol=1e-5)


def test_param_spec_rules():
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "model": 2})
  P = jax.sharding.PartitionSpec
  assert sharding.param_spec(("embed", "mlp"), (256, 1024), mesh) == P("fsdp", "model")
  assert sharding.param_spec(("norm",), (256,), mesh) == P(None)
  assert sharding.param_spec((None, None, None, "embed"), (3, 3, 3, 4096), mesh) == P(
      None, None, None, "fsdp")
  with pytest.raises(ValueError, match="devices"):
    sharding.make_mesh({"data": 3, "fsdp": 1, "model": 1})


def test_shard_eval_batch_pads_to_the_devices_and_marks_padding():
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2, "model": 1})
  batch = np.random.default_rng(0).random((10, 4, 4, 3), dtype=np.float32)
  images, valid = sharding.shard_eval_batch(batch, mesh)
  assert images.shape == (16, 4, 4, 3) and valid.shape == (16,)
  assert len({s.device for s in images.addressable_shards}) == 8  # split over all devices
  assert images.sharding.spec == sharding.batch_sharding(mesh).spec
  np.testing.assert_array_equal(np.asarray(images)[np.asarray(valid)], batch)
  assert int(np.asarray(valid).sum()) == 10


def test_fsdp_state_is_created_sharded_without_a_full_copy():
  config = tiny_config(mesh={"data": 1, "fsdp": 8, "model": 1})
  mesh = sharding.make_mesh(config.mesh)
  _, shardings, create = sharded_state_initializer(config, mesh)
  compiled = create.lower().compile()
  state, _ = compiled()
  full = sum(x.nbytes for x in jax.tree.leaves(state))
  per_device = sharding.bytes_per_device(state)
  assert per_device < full / 5
  # The initialising program's own per-device buffers stay of that order too (no device
  # materialises the whole state and slices it afterwards).
  memory = compiled.memory_analysis()
  if memory is not None:
    assert memory.output_size_in_bytes < full / 5
    assert memory.temp_size_in_bytes < full / 2
  for leaf, want in zip(jax.tree.leaves(state), jax.tree.leaves(shardings)):
    assert leaf.sharding == want
