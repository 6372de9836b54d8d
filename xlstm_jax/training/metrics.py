"""Metrics: tensorboardX scalars plus `metrics.jsonl` (one JSON object per logged step),
written by process 0 only. A run resumed from step N (a restart, or a fallback to an older
checkpoint) first drops the rows past N from metrics.jsonl and tells TensorBoard to purge
its events past N, so every step appears once. The console lines are in console.py."""

from __future__ import annotations

import json
import pathlib
import os

import jax


class MetricsWriter:
  """Appends to workdir/metrics.jsonl and workdir/tensorboard; `resume_step` (the step the
  run restored, 0 for a fresh start) drops what an earlier run logged past it."""

  def __init__(self, workdir, resume_step: int = 0):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from tensorboardX import SummaryWriter  # noqa: PLC0415 (process 0 only)
    self.workdir = pathlib.Path(workdir)
    truncate_jsonl(self.workdir / "metrics.jsonl", resume_step)
    tb_dir = self.workdir / "tensorboard"
    # TensorBoard drops the events of earlier runs at steps >= purge_step.
    purge = resume_step + 1 if tb_dir.is_dir() else None
    self.tb = SummaryWriter(str(tb_dir), purge_step=purge)
    self.jsonl = open(self.workdir / "metrics.jsonl", "a", encoding="utf-8")

  def write(self, step: int, metrics: dict) -> None:
    if not self.active:
      return
    clean = {k: float(v) for k, v in metrics.items()}
    for k, v in clean.items():
      self.tb.add_scalar(k, v, step)
    self.jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    self.jsonl.flush()

  def close(self) -> None:
    if self.active:
      self.tb.close()
      self.jsonl.close()


def truncate_jsonl(path, last_step: int) -> int:
  """Drops the rows of a metrics.jsonl whose step is past `last_step` (atomically: a
  temporary file, then rename); returns how many were dropped. A torn last line (a run
  killed mid-write) is dropped too."""
  path = pathlib.Path(path)
  if not path.exists():
    return 0
  keep, dropped = [], 0
  for line in path.read_text(encoding="utf-8").splitlines():
    try:
      row = json.loads(line)
      step = int(row["step"])
    except (ValueError, KeyError, TypeError):
      dropped += 1
      continue
    if step <= last_step:
      keep.append(line)
    else:
      dropped += 1
  if dropped:
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(l + "\n" for l in keep), encoding="utf-8")
    os.replace(tmp, path)
  return dropped
