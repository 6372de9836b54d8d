"""Synthetic tasks of the xLSTM paper as data sources for train.py.

  xlstm_jax.tasks.base      the Task interface, scaled_accuracy, check_example
  xlstm_jax.tasks.formal    formal languages (parity, modular arithmetic, ...): FORMAL_TASKS
  xlstm_jax.tasks.recall    MQAR and the revision task: RECALL_TASKS
  xlstm_jax.tasks.source    TaskSource: seeded, padded examples for the grain pipeline
  xlstm_jax.tasks.seeds     split_stream: one random stream per (run seed, split)

  task = make_task("parity"); task = make_task("mqar", num_pairs=8)
"""

from xlstm_jax.tasks.base import PAD, Task, check_example, scaled_accuracy
from xlstm_jax.tasks.formal import FORMAL_TASKS
from xlstm_jax.tasks.recall import RECALL_TASKS, recall_task
from xlstm_jax.tasks.seeds import SPLITS, example_rng, split_stream
from xlstm_jax.tasks.source import TaskSource, pad_example

TASK_NAMES = (*FORMAL_TASKS, *RECALL_TASKS)


def make_task(name: str, **kwargs) -> Task:
  """The task `name`; keyword arguments parametrise MQAR and revision (formal tasks take none)."""
  if name in FORMAL_TASKS:
    if kwargs:
      raise ValueError(f"formal task {name!r} takes no parameters, got {sorted(kwargs)}")
    return FORMAL_TASKS[name]
  if name in RECALL_TASKS:
    return recall_task(name, **kwargs)
  raise ValueError(f"unknown task {name!r}; known tasks: {list(TASK_NAMES)}")


__all__ = ["FORMAL_TASKS", "PAD", "RECALL_TASKS", "SPLITS", "TASK_NAMES", "Task", "TaskSource",
           "check_example", "example_rng", "make_task", "pad_example", "scaled_accuracy",
           "split_stream"]
