"""Checkpoint integrity: a manifest of per-array checksums beside each checkpoint.

orbax detects a checkpoint it cannot read, but not one whose array bytes were changed in
place (a bad disk, a partial copy): such a checkpoint restores "successfully" with garbage
values. Each checkpoint therefore gets `integrity.json` in its step directory, written
only after orbax finished the save: a CRC-32 of every array's host bytes (with its shape
and dtype) and a SHA-256 of the data iterator's state. Restoring recomputes them from the
restored values and compares; a mismatch, or a non-finite parameter or optimizer value,
raises `CheckpointIntegrityError`, which the Checkpointer treats like an unreadable
checkpoint (logged, moved aside, the previous one tried).

A checkpoint without a manifest (written before this existed, or by a run killed between
orbax's finish and the manifest write) still restores after the finiteness check, but it
counts as unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import zlib

import jax
import numpy as np

MANIFEST = "integrity.json"


class CheckpointIntegrityError(ValueError):
  """A checkpoint restored, but its values are not the ones that were saved."""


def _host_leaves(state) -> list[tuple[str, np.ndarray]]:
  """(path, host array) of every array leaf of `state`, gathered whole on every process."""
  out = []
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      from jax.experimental import multihost_utils  # noqa: PLC0415 (multi-process only)
      leaf = multihost_utils.process_allgather(leaf, tiled=True)
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    out.append((jax.tree_util.keystr(path), np.asarray(leaf)))
  return out


def manifest(state, data_state: dict) -> dict:
  """The checksums of a train state and data-iterator state, as saved in `MANIFEST`."""
  arrays = {name: {"crc32": zlib.crc32(np.ascontiguousarray(a).tobytes()),
                   "shape": list(a.shape), "dtype": str(a.dtype)}
            for name, a in _host_leaves(state)}
  data = hashlib.sha256(json.dumps(data_state, sort_keys=True).encode()).hexdigest()
  return {"format": 1, "arrays": arrays, "data_sha256": data}


def write_manifest(step_dir, content: dict) -> None:
  """Writes `content` to step_dir/MANIFEST atomically (temporary file, then rename)."""
  path = pathlib.Path(step_dir) / MANIFEST
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(content, sort_keys=True) + "\n")
  os.replace(tmp, path)


def check_finite(state) -> None:
  """Raises CheckpointIntegrityError naming the first leaf with a NaN or Inf value."""
  for name, a in _host_leaves(state):
    if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
      bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
      raise CheckpointIntegrityError(f"{bad} of {a.size} values of {name} are NaN or Inf")


def verify(step_dir, state, data_state: dict) -> bool:
  """Checks a restored checkpoint against its manifest; True if it had one and matched,
  False if it has none (unverified). Raises CheckpointIntegrityError on any difference or
  on non-finite values, naming the first array that differs."""
  check_finite(state)
  path = pathlib.Path(step_dir) / MANIFEST
  if not path.exists():
    return False
  try:
    saved = json.loads(path.read_text())
    saved_arrays, saved_data = saved["arrays"], saved["data_sha256"]
  except (ValueError, KeyError, TypeError) as err:
    raise CheckpointIntegrityError(f"{path} is unreadable ({err})") from None
  now = manifest(state, data_state)
  if set(now["arrays"]) != set(saved_arrays):
    missing = sorted(set(saved_arrays) ^ set(now["arrays"]))[:3]
    raise CheckpointIntegrityError(f"the arrays differ from the manifest's (e.g. {missing})")
  for name, entry in now["arrays"].items():
    if entry != saved_arrays[name]:
      raise CheckpointIntegrityError(
          f"checksum mismatch in {name}: crc32 {entry['crc32']:#010x} restored, "
          f"{saved_arrays[name].get('crc32', 0):#010x} saved")
  if now["data_sha256"] != saved_data:
    raise CheckpointIntegrityError("the data iterator's state differs from the manifest's")
  return True
