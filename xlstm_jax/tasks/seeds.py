"""Independent random streams for synthetic-task data: one per (run seed, split).

  stream = split_stream(run_seed=0, split="train")   # a numpy SeedSequence
  rng = example_rng(stream, i)                        # example i's own generator

A run's training, validation and test examples each come from their own stream, keyed by
numpy SeedSequence spawn keys (run_seed, split index) under one fixed entropy, so no two
(run seed, split) pairs share a stream: a seed sweep never trains on another run's
validation or test data (with plain integer seeds, run 1's training seed was run 0's
validation seed). Example i of a stream is drawn from the child key (..., i), so examples
can be made in any order on any host.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "validation", "test")
DATA_ENTROPY = 0x784C53544D   # fixed: the streams are a function of (run seed, split) only


def split_stream(run_seed: int, split: str) -> np.random.SeedSequence:
  """The SeedSequence of `split` (one of SPLITS) for the run seeded `run_seed` (>= 0)."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not one of {SPLITS}")
  if int(run_seed) != run_seed or run_seed < 0:
    raise ValueError(f"run_seed={run_seed!r} must be a non-negative integer")
  return np.random.SeedSequence(DATA_ENTROPY, spawn_key=(int(run_seed), SPLITS.index(split)))


def example_rng(seed: int | np.random.SeedSequence, *index: int) -> np.random.Generator:
  """The generator of the example at `index` (e.g. (i,) or (length, j)) of a stream: for a
  SeedSequence, its child with spawn key + index; for a plain int seed (older workdirs and
  tests), default_rng([seed, *index]) as before streams existed."""
  if isinstance(seed, np.random.SeedSequence):
    return np.random.default_rng(np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + tuple(int(i) for i in index)))
  return np.random.default_rng([seed, *index])
