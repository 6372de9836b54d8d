"""Checkpoint integrity: checksum manifests, corrupt bytes and non-finite values moved aside,
the NaN stop's verdict, and eval's read-only restore."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_train_entry import checkpoint_steps, metrics, train
from xlstm_jax.training import integrity
from xlstm_jax.training.checkpoint import Checkpointer


def _state(scale):
  return {"w": jnp.arange(64, dtype=jnp.float32) * scale, "b": jnp.ones((3, 4)) * scale,
          "step": jnp.asarray(int(scale), jnp.int32)}


def _save_steps(directory, steps):
  ckpt = Checkpointer(directory, keep=5)
  for s in steps:
    ckpt.save(s, _state(float(s)), {"pos": s})
  ckpt.close()


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                     sharding=x.sharding), _state(1.0))


def test_every_checkpoint_gets_a_manifest_that_verifies(tmp_path):
  _save_steps(tmp_path, [1, 2])
  for s in (1, 2):
    content = json.loads((tmp_path / str(s) / integrity.MANIFEST).read_text())
    assert set(content["arrays"]) == {"['w']", "['b']", "['step']"}
  ckpt = Checkpointer(tmp_path)
  step, state, data = ckpt.restore_latest(_abstract())
  ckpt.close()
  assert step == 2 and data == {"pos": 2} and ckpt.trusted_step == 2
  np.testing.assert_array_equal(state["w"], np.arange(64) * 2.0)


def test_poll_writes_the_manifest_once_the_save_finished_without_a_next_save(tmp_path):
  ckpt = Checkpointer(tmp_path, keep=5)
  ckpt.save(1, _state(1.0), {"pos": 1})
  ckpt.manager.wait_until_finished()   # the save is done; nothing wrote its manifest yet
  assert not (tmp_path / "1" / integrity.MANIFEST).exists()
  ckpt.poll()
  assert integrity.verify(tmp_path / "1", _state(1.0), {"pos": 1}) is True
  ckpt.poll()   # nothing in flight: a no-op
  ckpt.close()


def test_verify_names_the_array_that_changed(tmp_path):
  _save_steps(tmp_path, [1])
  changed = _state(1.0)
  changed["b"] = changed["b"].at[1, 2].set(7.0)
  with pytest.raises(integrity.CheckpointIntegrityError, match=r"checksum mismatch in \['b'\]"):
    integrity.verify(tmp_path / "1", changed, {"pos": 1})
  with pytest.raises(integrity.CheckpointIntegrityError, match="data iterator"):
    integrity.verify(tmp_path / "1", _state(1.0), {"pos": 99})
  assert integrity.verify(tmp_path / "1", _state(1.0), {"pos": 1}) is True


def test_a_manifest_mismatch_moves_the_checkpoint_aside(tmp_path, caplog):
  _save_steps(tmp_path, [1, 2])
  # Same-length change of the recorded checksum: what changed array bytes look like to it.
  path = tmp_path / "2" / integrity.MANIFEST
  content = json.loads(path.read_text())
  content["arrays"]["['w']"]["crc32"] ^= 1
  path.write_text(json.dumps(content))
  ckpt = Checkpointer(tmp_path)
  step, _, _ = ckpt.restore_latest(_abstract())
  ckpt.close()
  assert step == 1
  assert (tmp_path / "corrupt_2").is_dir() and not (tmp_path / "2").exists()
  assert "checksum mismatch in ['w']" in caplog.text


def test_non_finite_values_count_as_corrupt_even_without_a_manifest(tmp_path, caplog):
  ckpt = Checkpointer(tmp_path, keep=5)
  ckpt.save(1, _state(1.0), {"pos": 1})
  bad = _state(2.0)
  bad["w"] = bad["w"].at[3].set(jnp.nan)
  ckpt.save(2, bad, {"pos": 2})
  ckpt.close()
  os.remove(tmp_path / "2" / integrity.MANIFEST)
  ckpt = Checkpointer(tmp_path)
  step, _, _ = ckpt.restore_latest(_abstract())
  ckpt.close()
  assert step == 1 and (tmp_path / "corrupt_2").is_dir()
  assert "1 of 64 values of ['w'] are NaN or Inf" in caplog.text


def test_a_checkpoint_without_manifest_restores_unverified(tmp_path):
  _save_steps(tmp_path, [1])
  os.remove(tmp_path / "1" / integrity.MANIFEST)
  ckpt = Checkpointer(tmp_path)
  assert ckpt.restore_latest(_abstract())[0] == 1
  assert ckpt.trusted_step is None
  # A NaN straight after it: the unverified checkpoint is the suspect and is moved aside.
  assert "moved aside as suspect" in ckpt.after_nan()
  ckpt.close()
  assert (tmp_path / "corrupt_1").is_dir() and not (tmp_path / "1").exists()


def test_eval_restores_read_only(tmp_path):
  _save_steps(tmp_path / "ck", [1, 2])
  path = tmp_path / "ck" / "2" / integrity.MANIFEST
  content = json.loads(path.read_text())
  content["arrays"]["['b']"]["crc32"] ^= 1
  path.write_text(json.dumps(content))
  before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
  ckpt = Checkpointer(tmp_path / "ck", read_only=True, async_save=False)
  assert ckpt.restore_latest(_abstract(), move_corrupt=False)[0] == 1
  ckpt.close()
  assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
  missing = Checkpointer(tmp_path / "none", read_only=True, async_save=False)
  assert missing.restore_latest(_abstract(), move_corrupt=False) is None
  missing.close()
  assert not (tmp_path / "none").exists()


def test_bytes_changed_in_place_are_caught_and_the_run_recovers(tmp_path):
  """The issue's case end to end: overwrite bytes inside the newest checkpoint's array files
  (same length); the rerun says why, moves it aside, resumes from the previous one and
  reproduces the uninterrupted losses."""
  steps = ["--config.num_steps=6", "--config.checkpoint_every=2", "--config.eval_every=0",
           "--config.keep_checkpoints=5"]
  train(tmp_path / "straight", *steps)
  run = tmp_path / "run"
  train(run, *steps)
  files = [f for f in (run / "checkpoints" / "6" / "state").rglob("*")
           if f.is_file() and f.parent.name == "d"]
  assert files
  for f in files:
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 256] = bytes(len(data[mid:mid + 256]))  # zeros, same length
    f.write_bytes(bytes(data))
  again = train(run, *steps)
  assert "checkpoint 6" in again.stderr and "does not restore" in again.stderr
  assert (run / "checkpoints" / "corrupt_6").is_dir()
  assert checkpoint_steps(run) == [2, 4, 6]
  a, b = metrics(tmp_path / "straight"), metrics(run)
  for step in range(1, 7):
    assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-5), step
