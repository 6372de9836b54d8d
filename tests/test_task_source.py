"""TaskSource: seeded, order-free examples of a task, padded, through the grain pipeline."""

import numpy as np
import pytest

from xlstm_jax.data import make_dataset
from xlstm_jax.tasks.base import PAD, check_example, scaled_accuracy
from xlstm_jax.tasks.source import TaskSource, pad_example


class FirstSymbol:
  """Toy task: read `length` symbols (ids 2..5) and SEP (1); answer the first symbol."""
  name, vocab_size = "first_symbol", 6

  def example(self, rng, length):
    symbols = rng.integers(2, 6, length).astype(np.int32)
    inputs = np.concatenate([symbols, [1]]).astype(np.int32)
    targets = np.zeros(length + 1, np.int32)
    targets[-1] = symbols[0]
    mask = np.zeros(length + 1, bool)
    mask[-1] = True
    return {"inputs": inputs, "targets": targets, "mask": mask}

  def chance_accuracy(self, length):
    return 0.25


def test_examples_are_seeded_by_index_and_padded():
  src = TaskSource(FirstSymbol(), num_examples=50, lengths=(3, 9), seq_len=12, seed=4)
  again = TaskSource(FirstSymbol(), num_examples=50, lengths=(3, 9), seq_len=12, seed=4)
  other = TaskSource(FirstSymbol(), num_examples=50, lengths=(3, 9), seq_len=12, seed=5)
  backwards = [again[i] for i in reversed(range(50))][::-1]  # order does not matter
  sizes = set()
  for i in range(50):
    ex = src[i]
    assert all(np.array_equal(ex[k], backwards[i][k]) for k in ex)
    assert all(v.shape == (12,) for v in ex.values())
    n = int(np.flatnonzero(ex["inputs"] == 1)[0]) + 1  # SEP ends the real tokens
    sizes.add(n - 1)
    assert (ex["inputs"][n:] == PAD).all() and not ex["mask"][n:].any()
    assert ex["mask"].sum() == 1 and ex["targets"][n - 1] == ex["inputs"][0]
  assert sizes == set(range(3, 10))
  assert any(not np.array_equal(src[i]["inputs"], other[i]["inputs"]) for i in range(50))


def test_batches_carry_the_mask():
  src = TaskSource(FirstSymbol(), num_examples=40, lengths=(3, 9), seq_len=12)
  batch = next(iter(make_dataset(src, batch_size=8, seed=0)))
  assert set(batch) == {"inputs", "targets", "mask"} and batch["mask"].dtype == bool
  assert batch["inputs"].shape == (8, 12) and batch["mask"].sum() == 8


def test_errors_and_interface_checks():
  with pytest.raises(ValueError, match="take 21 tokens, more than seq_len=16"):
    TaskSource(FirstSymbol(), num_examples=5, lengths=(3, 20), seq_len=16)
  with pytest.raises(ValueError, match=r"lengths=\(5, 3\)"):
    TaskSource(FirstSymbol(), num_examples=5, lengths=(5, 3), seq_len=16)
  with pytest.raises(ValueError, match="does not fit seq_len=2"):
    pad_example(FirstSymbol().example(np.random.default_rng(0), 3), 2)
  task = FirstSymbol()
  check_example(task, task.example(np.random.default_rng(0), 4))
  bad = task.example(np.random.default_rng(0), 4)
  bad["mask"][:] = False
  with pytest.raises(ValueError, match="at least one scored position, got dtype bool with 0 set"):
    check_example(task, bad)
  bad = task.example(np.random.default_rng(0), 4)
  bad["inputs"] = bad["inputs"].astype(np.int64)
  with pytest.raises(ValueError, match=r"inputs must be int32 ids in \[0, \d+\), got int64 in"):
    check_example(task, bad)
  assert scaled_accuracy(0.25, 0.25) == 0.0 and scaled_accuracy(1.0, 0.25) == 1.0
  with pytest.raises(ValueError, match="chance accuracy"):
    scaled_accuracy(0.5, 1.0)
