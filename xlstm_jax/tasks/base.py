"""The interface of the synthetic tasks (formal languages, MQAR, revision).

A task makes one example from a numpy Generator and a length:

  ex = task.example(rng, length)   # {"inputs", "targets", "mask"}: int32, int32, bool [n]

`inputs` is what the model reads, `targets[t]` what it must output after reading
inputs[: t + 1], and `mask[t]` says whether position t is scored (the answer positions;
elsewhere targets are PAD and ignored). Every task reserves id 0 for PAD, so a batch of
examples of different lengths is right-padded with zeros and mask False.
`length` is the task's own size parameter (the input string length for the formal
languages, the context length for MQAR, the stream length for revision); `n` may be a
little larger (separator and answer positions).

`chance_accuracy` is the per-position accuracy of guessing uniformly among the possible
answers; `scaled_accuracy` maps chance to 0 and perfect to 1, as in the xLSTM paper.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

PAD = 0


class Task(Protocol):
  name: str
  vocab_size: int      # ids 0..vocab_size-1, 0 = PAD

  def example(self, rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    """One example of size `length` (see the module docstring)."""

  def chance_accuracy(self, length: int) -> float:
    """Expected per-position accuracy of a uniform guess among the possible answers."""


def scaled_accuracy(accuracy: float, chance: float) -> float:
  """(accuracy - chance) / (1 - chance): 0 at chance level, 1 when perfect."""
  if not 0.0 <= chance < 1.0:
    raise ValueError(f"chance accuracy must be in [0, 1), got {chance}")
  return (accuracy - chance) / (1.0 - chance)


def check_example(task: Task, ex: dict[str, np.ndarray]) -> None:
  """Raises ValueError if `ex` breaks the interface (shapes, dtypes, ids, mask)."""
  keys = {"inputs", "targets", "mask"}
  if set(ex) != keys:
    raise ValueError(f"{task.name}: example keys {sorted(ex)}, expected {sorted(keys)}")
  n = len(ex["inputs"])
  for k in keys:
    if ex[k].shape != (n,):
      raise ValueError(f"{task.name}: {k}.shape={ex[k].shape}, expected ({n},)")
  if ex["mask"].dtype != np.bool_ or not ex["mask"].any():
    raise ValueError(f"{task.name}: mask must be bool with at least one scored position, "
                     f"got dtype {ex['mask'].dtype} with {int(ex['mask'].sum())} set")
  for k in ("inputs", "targets"):
    if ex[k].dtype != np.int32 or ex[k].min() < 0 or ex[k].max() >= task.vocab_size:
      raise ValueError(f"{task.name}: {k} must be int32 ids in [0, {task.vocab_size}), got "
                       f"{ex[k].dtype} in [{ex[k].min()}, {ex[k].max()}]")
  if (ex["targets"][ex["mask"]] == PAD).any():
    raise ValueError(f"{task.name}: a scored target is PAD")
