"""What a training run prints (process 0 only): a progress line with an ETA from the
steady-state step rate, one line per evaluation, and a closing summary."""

from __future__ import annotations

import math
import sys
import time

import jax

# Steps after the start that the ETA ignores: the first compiles the train step (and the
# first evaluation compiles the eval step), which would inflate the rate's denominator.
WARMUP_STEPS = 2


class Progress:
  """`step 120/1000 [###.....] 12% loss 3.21 | 5.1 steps/s, ETA 2m52s` on one console line;
  the rate counts only the steps after the first WARMUP_STEPS of this run (ETA "?" until
  then)."""

  def __init__(self, first: int, total: int, stream=sys.stderr):
    self.first, self.total, self.stream = first, total, stream
    self.active = jax.process_index() == 0
    self.start = time.perf_counter()
    self.steady = None  # (step, time) once the warm-up steps are done

  def rate(self, step: int, now: float) -> float | None:
    """Steps per second since the warm-up ended, or None before any steady step."""
    if self.steady is None:
      if step - self.first >= WARMUP_STEPS:
        self.steady = (step, now)
      return None
    done = step - self.steady[0]
    return done / max(now - self.steady[1], 1e-9) if done > 0 else None

  def update(self, step: int, loss: float) -> None:
    rate = self.rate(step, time.perf_counter())
    if not self.active:
      return
    eta = (self.total - step) / rate if rate else float("inf")
    frac = step / self.total
    bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
    speed = f"{rate:.2f} steps/s" if rate else "measuring"
    self.stream.write(f"\rstep {step}/{self.total} [{bar}] {frac:4.0%} loss {loss:.4f} | "
                      f"{speed}, ETA {duration(eta)}   ")
    self.stream.flush()

  def evaluation(self, step: int, result: dict) -> None:
    """One line per evaluation, below the progress line."""
    if self.active:
      self.stream.write(f"\neval at step {step}: loss {result['eval_loss']:.4f}, "
                        f"perplexity {result['eval_perplexity']:.3f}\n")
      self.stream.flush()

  def close(self) -> None:
    if self.active:
      self.stream.write("\n")


def summary(workdir, steps: tuple[int, int], tokens: int, seconds: float,
            train_loss: float | None, eval_loss: float | None, stream=sys.stderr) -> str:
  """Writes (process 0) and returns the closing lines: steps run this time (first, last),
  tokens, wall time, final losses, and where the checkpoints, metrics and TensorBoard
  logs are."""
  first, last = steps
  fmt = lambda x: "n/a" if x is None or not math.isfinite(x) else f"{x:.4f}"  # noqa: E731
  text = (f"done: steps {first + 1}-{last} ({last - first} run, {tokens:,} tokens) in "
          f"{duration(seconds)}; final train loss {fmt(train_loss)}, eval loss "
          f"{fmt(eval_loss)}\n"
          f"  checkpoints {workdir}/checkpoints, metrics {workdir}/metrics.jsonl, "
          f"TensorBoard {workdir}/tensorboard\n")
  if last == first:
    text = f"done: nothing to do, the run is already at step {last}\n" + text.split("\n", 1)[1]
  if jax.process_index() == 0:
    stream.write(text)
    stream.flush()
  return text


def duration(seconds: float) -> str:
  """`2m05s`, `1h03m`, or `?` for an unknown (infinite) time."""
  if not math.isfinite(seconds):
    return "?"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
