"""Synthetic tasks of the xLSTM paper as data sources for train.py.

  xlstm_jax.tasks.base      the Task interface, scaled_accuracy, check_example
  xlstm_jax.tasks.source    TaskSource: seeded, padded examples for the grain pipeline
"""

from xlstm_jax.tasks.base import PAD, Task, check_example, scaled_accuracy
from xlstm_jax.tasks.source import TaskSource, pad_example

__all__ = ["PAD", "Task", "TaskSource", "check_example", "pad_example", "scaled_accuracy"]
