"""Orbax checkpoints of the whole training state plus the data iterator's position.

Saves are asynchronous and atomic (a half-written step is never picked up), so a run killed
at any moment resumes from its last complete save with the same next batch.
"""
import pathlib

import grain
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, directory, *, every_steps: int, keep: int):
    self.every_steps = every_steps
    self._manager = ocp.CheckpointManager(
        pathlib.Path(directory).absolute(),
        item_names=("state", "data"),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "data": grain.checkpoint.CheckpointHandler()},
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, data_iterator, *, force: bool = False) -> bool:
    if not force and step % self.every_steps:
      return False
    return self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator)), force=force)

  def restore(self, abstract_state, data_iterator, step: int | None = None):
    """Returns the state at `step` (default: latest); moves `data_iterator` in place."""
    step = self._manager.latest_step() if step is None else step
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"]

  def restore_state(self, abstract_state, step: int | None = None):
    """The training state alone (for evaluation), without touching any data iterator."""
    step = self._manager.latest_step() if step is None else step
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()
