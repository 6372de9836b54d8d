"""Checkpoints: one orbax CheckpointManager saving the train state and the data iterator's
position together, so a resumed run sees exactly the batches it would have seen.

Saves are asynchronous; orbax writes each step to a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact. A checkpoint
that fails to restore is reported and the previous one is tried.
"""

from __future__ import annotations

import logging
import pathlib

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  def __init__(self, directory, keep: int = 3, async_save: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, data_state: dict) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)))

  def restore_latest(self, abstract_state, move_corrupt: bool = True):
    """(step, state, data_state) of the newest checkpoint that restores, or None.

    `abstract_state` (shapes and shardings, e.g. from jax.eval_shape or the live state)
    places the restored arrays. A checkpoint that does not restore is logged and, with
    `move_corrupt`, moved aside to `corrupt_<step>` (kept for inspection) so the run can
    save that step again; readers such as eval.py leave it in place.
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
        return step, restored["state"], restored["data"]
      except Exception as err:  # noqa: BLE001 - any failure means "try the previous one"
        logging.warning("checkpoint %d in %s does not restore (%s: %.300s); trying the "
                        "previous one", step, self.directory, type(err).__name__, err)
        if move_corrupt:
          aside = self.directory / f"corrupt_{step}"
          (self.directory / str(step)).rename(aside)
          logging.warning("moved checkpoint %d aside to %s", step, aside)
          self.manager.reload()
    return None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()



class _QuietOrbax(logging.Filter):
  """orbax narrates every save and restore at INFO; keep its warnings and errors only."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or "orbax" not in record.pathname


def quiet_orbax_logs(handler: logging.Handler) -> None:
  """Drops orbax's INFO records from `handler` (e.g. absl's console handler)."""
  handler.addFilter(_QuietOrbax())
