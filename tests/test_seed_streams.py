"""Synthetic-task data streams: one SeedSequence per (run seed, split), disjoint examples."""

import numpy as np
import pytest

from xlstm_jax.tasks import SPLITS, TaskSource, example_rng, make_task, split_stream
from xlstm_jax.training.data import _task_sources
from test_task_runs import _config


def test_streams_are_distinct_spawn_keys():
  keys = {(s, split): split_stream(s, split).spawn_key for s in range(4) for split in SPLITS}
  assert len(set(keys.values())) == len(keys)
  first = {k: example_rng(split_stream(*k), 0).integers(2**63) for k in keys}
  assert len(set(first.values())) == len(first)
  again = example_rng(split_stream(1, "validation"), 0).integers(2**63)
  assert again == first[(1, "validation")]


def test_examples_are_disjoint_across_splits_and_seeds():
  """Strings of 40 symbols: any shared string between two streams would mean a shared
  stream (a chance collision has probability ~1e-7 here)."""
  task = make_task("parity")
  seen = {}
  for seed in range(3):
    for split in SPLITS:
      src = TaskSource(task, 200, (40, 40), 48, seed=split_stream(seed, split))
      strings = {src[i]["inputs"].tobytes() for i in range(200)}
      assert len(strings) == 200
      for other, old in seen.items():
        assert not strings & old, (seed, split, other)
      seen[(seed, split)] = strings


def test_a_runs_sources_use_its_streams():
  c = _config("formal", "task=parity,model=slstm")
  c.num_steps, c.batch_size = 2, 4
  train, val = _task_sources(c, make_task("parity"))
  assert train.seed.spawn_key == (c.seed, 0) and val.seed.spawn_key == (c.seed, 1)
  c.seed = 1
  train1, _ = _task_sources(c, make_task("parity"))
  assert not np.array_equal(train1[0]["inputs"], val[0]["inputs"])


def test_int_seeds_keep_their_old_streams_and_bad_input_errors():
  assert example_rng(5, 2, 3).integers(10**9) == np.random.default_rng([5, 2, 3]).integers(10**9)
  with pytest.raises(ValueError, match="split='val' is not one of"):
    split_stream(0, "val")
  with pytest.raises(ValueError, match="run_seed=-1 must be a non-negative integer"):
    split_stream(-1, "train")
