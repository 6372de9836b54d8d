"""Checkpoints: one orbax CheckpointManager saving the train state and the data iterator's
position together, so a resumed run sees exactly the batches it would have seen.

Saves are asynchronous; orbax writes each step to a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact. Each step
directory also gets a checksum manifest once its save finished (xlstm_jax.training.integrity):
the training loop polls after each step, so the manifest lands within a step of the save.
A checkpoint that fails to restore, fails its manifest or holds NaN/Inf values is reported
and the previous one is tried.
"""

from __future__ import annotations

import logging
import pathlib

import jax
import orbax.checkpoint as ocp

from xlstm_jax.training import integrity


class Checkpointer:
  """Saves and restores a run's checkpoints. `trusted_step` is the newest step known good:
  one this object saved, or one that restored and matched its manifest (None otherwise).
  `read_only` (eval.py) creates nothing and never writes into the directory."""

  def __init__(self, directory, keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    self.read_only = read_only
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                           enable_async_checkpointing=async_save,
                                           read_only=read_only)
    self.manager = ocp.CheckpointManager(self.directory, options=options)
    self.trusted_step = None
    self.restored_step = None   # the step restore_latest returned, while no save followed
    self._unwritten = None  # (step, manifest) of a save that may still be in flight

  def save(self, step: int, state, data_state: dict) -> None:
    """Starts saving `step`; its manifest is written once the save has finished."""
    content = integrity.manifest(state, data_state)  # from the live values: a host sync
    self._write_manifest()
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)))
    self._unwritten = (step, content)
    self.trusted_step, self.restored_step = step, None

  def poll(self) -> None:
    """Writes the manifest of the save in flight if that save has finished; never waits.
    Called after every training step, so a finished checkpoint is verified (and is what
    `--save_progress` copies) without waiting for the next save."""
    if self._unwritten is not None and not self.manager.is_saving_in_progress():
      self._write_manifest()

  def _write_manifest(self) -> None:
    """Waits for the save in flight, then writes its manifest (process 0)."""
    if self._unwritten is None:
      return
    self.manager.wait_until_finished()
    step, content = self._unwritten
    self._unwritten = None
    step_dir = self.directory / str(step)
    if jax.process_index() == 0 and step_dir.is_dir():
      integrity.write_manifest(step_dir, content)

  def restore_latest(self, abstract_state, move_corrupt: bool = True):
    """(step, state, data_state) of the newest checkpoint that restores and verifies, or None.

    `abstract_state` (shapes and shardings, e.g. from jax.eval_shape or the live state)
    places the restored arrays. A checkpoint that does not restore, differs from its
    checksum manifest or holds NaN/Inf values is logged with the reason and, with
    `move_corrupt`, moved aside to `corrupt_<step>` (kept for inspection) so the run can
    save that step again; readers such as eval.py leave it in place.
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
        verified = integrity.verify(self.directory / str(step), restored["state"],
                                    restored["data"])
        if not verified:
          logging.warning("checkpoint %d in %s has no checksum manifest (%s): restored "
                          "unverified", step, self.directory, integrity.MANIFEST)
        self.trusted_step = step if verified else None
        self.restored_step = step
        return step, restored["state"], restored["data"]
      except Exception as err:  # noqa: BLE001 - any failure means "try the previous one"
        logging.warning("checkpoint %d in %s does not restore (%s: %.300s); trying the "
                        "previous one", step, self.directory, type(err).__name__, err)
        if move_corrupt:
          self._move_aside(step)
    return None

  def _move_aside(self, step: int) -> None:
    """Renames step's directory to corrupt_<step> (corrupt_<step>.1, ... if taken)."""
    if jax.process_index() == 0:
      aside, n = self.directory / f"corrupt_{step}", 0
      while aside.exists():
        n += 1
        aside = self.directory / f"corrupt_{step}.{n}"
      (self.directory / str(step)).rename(aside)
      logging.warning("moved checkpoint %d aside to %s", step, aside)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # noqa: PLC0415
      multihost_utils.sync_global_devices(f"checkpoint {step} moved aside")
    self.manager.reload()

  def after_nan(self) -> str:
    """What a NaN stop says about the checkpoints: the one it trusts (saved by this run after
    a finite loss, or restored and verified), or, if the run diverged straight from an
    unverified checkpoint, that checkpoint moved aside so a rerun resumes from the one
    before it."""
    self.wait()
    if self.trusted_step is not None:
      return (f"checkpoint {self.trusted_step} in {self.directory} is verified; a rerun "
              "resumes from it")
    if self.restored_step is not None and not self.read_only:
      step = self.restored_step
      self._move_aside(step)
      self.restored_step = None
      return (f"the run diverged from checkpoint {step}, which had no checksum manifest: "
              f"moved aside as suspect; a rerun resumes from the one before it")
    return f"no verified checkpoint in {self.directory}"

  def wait(self) -> None:
    self.manager.wait_until_finished()
    self._write_manifest()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self._write_manifest()
    self.manager.close()



class _QuietOrbax(logging.Filter):
  """orbax narrates every save and restore at INFO; keep its warnings and errors only."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or "orbax" not in record.pathname


def quiet_orbax_logs(handler: logging.Handler) -> None:
  """Drops orbax's INFO records from `handler` (e.g. absl's console handler)."""
  handler.addFilter(_QuietOrbax())
