"""Metrics: tensorboardX scalars plus `metrics.jsonl` (one JSON object per logged step),
written by process 0 only, and a console progress line with ETA."""

from __future__ import annotations

import json
import pathlib
import sys
import time

import jax


class MetricsWriter:
  def __init__(self, workdir):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from tensorboardX import SummaryWriter  # noqa: PLC0415 (process 0 only)
    self.workdir = pathlib.Path(workdir)
    self.tb = SummaryWriter(str(self.workdir / "tensorboard"))
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


class Progress:
  """`step 120/1000 [###.....] 12% loss 3.21 | 5.1 steps/s, ETA 2m52s` on one console line."""

  def __init__(self, first: int, total: int, stream=sys.stderr):
    self.first, self.total, self.stream = first, total, stream
    self.start = time.perf_counter()

  def update(self, step: int, loss: float) -> None:
    if jax.process_index() != 0:
      return
    done = step - self.first
    rate = done / max(time.perf_counter() - self.start, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    frac = step / self.total
    bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
    self.stream.write(f"\rstep {step}/{self.total} [{bar}] {frac:4.0%} loss {loss:.4f} | "
                      f"{rate:.2f} steps/s, ETA {_duration(eta)}   ")
    self.stream.flush()

  def close(self) -> None:
    if jax.process_index() == 0:
      self.stream.write("\n")


def _duration(seconds: float) -> str:
  if seconds == float("inf"):
    return "?"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
