"""A synthetic task as a random-access data source for the grain pipeline.

  src = TaskSource(task, num_examples=100_000, lengths=(3, 40), seq_len=128, seed=0)
  ds = data.make_dataset(src, batch_size=32, seed=0)   # {"inputs", "targets", "mask"}

Example i is generated from its own generator (tasks.seeds.example_rng(seed, i); `seed`
an int or a split's SeedSequence from tasks.seeds.split_stream), so any example can be
made in any order on any host (what grain's shuffling and per-host reads need) and the
same config always gives the same data. Its size is drawn uniformly from `lengths`
(inclusive) and it is right-padded with PAD (mask False) to `seq_len`.

With `curriculum=c > 0` the largest size grows with the index: example i draws from
[low, low + (high - low) * min(1, i / (c * num_examples))], so read in index order (the
training data of a task run is; examples are independent draws, nothing to shuffle)
the first fraction c of training ramps from the shortest strings to the full range.
"""

from __future__ import annotations

import numpy as np

from xlstm_jax.tasks.base import PAD, Task
from xlstm_jax.tasks.seeds import example_rng


def pad_example(ex: dict[str, np.ndarray], seq_len: int) -> dict[str, np.ndarray]:
  """Right-pads an example to seq_len (PAD ids, mask False); ValueError if it is longer."""
  n = len(ex["inputs"])
  if n > seq_len:
    raise ValueError(f"an example of {n} tokens does not fit seq_len={seq_len}")
  fill = {"inputs": PAD, "targets": PAD, "mask": False}
  return {k: np.concatenate([v, np.full(seq_len - n, fill[k], v.dtype)]) for k, v in ex.items()}


class TaskSource:
  """`num_examples` examples of `task` with sizes in `lengths`, padded to `seq_len`."""

  def __init__(self, task: Task, num_examples: int, lengths: tuple[int, int], seq_len: int,
               seed: int | np.random.SeedSequence = 0, curriculum: float = 0.0):
    lo, hi = lengths
    if not 1 <= lo <= hi:
      raise ValueError(f"lengths={lengths} must satisfy 1 <= low <= high")
    if num_examples < 1:
      raise ValueError(f"num_examples={num_examples} must be >= 1")
    if not 0.0 <= curriculum <= 1.0:
      raise ValueError(f"curriculum={curriculum} must be a fraction of the examples in [0, 1]")
    self.task, self.num_examples, self.lengths = task, num_examples, (lo, hi)
    self.curriculum = curriculum
    self.seq_len, self.seed = seq_len, seed
    longest = len(task.example(np.random.default_rng(0), hi)["inputs"])
    if longest > seq_len:
      raise ValueError(f"{task.name} examples of size {hi} take {longest} tokens, more than "
                       f"seq_len={seq_len}; raise seq_len or lower the lengths")

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    if not 0 <= i < self.num_examples:
      raise IndexError(f"example {i} outside [0, {self.num_examples})")
    rng = example_rng(self.seed, i)
    lo, hi = self.lengths
    if self.curriculum > 0:
      hi = lo + round((hi - lo) * min(1.0, i / (self.curriculum * self.num_examples)))
    length = int(rng.integers(lo, hi + 1))
    return pad_example(self.task.example(rng, length), self.seq_len)
