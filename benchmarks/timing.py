"""Timing shared by the benchmark scripts (run as `python benchmarks/<script>.py`)."""

import time

import jax


def best_ms(fn, args, repeats: int) -> float:
  """Best-of-`repeats` wall time of fn(*args) in milliseconds, after one compile/warm-up
  call; blocks on the result so asynchronous dispatch is timed in full."""
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return best * 1e3
