"""Shared builder of the synthetic-task configs (configs/formal.py, mqar.py, revision.py).

Not a run config itself: `parse_options` reads the "key=value,..." argument after the
config file's colon, `task_config` turns a task and a model family into a full run config
(the default run's fields, so every `--config.*` override works).
"""

import ml_collections
import numpy as np

from configs.default import get_config as default_config
from xlstm_jax import presets
from xlstm_jax.tasks import make_task


def _convert(value: str, kind: type):
  """The option string as the default's type; bools from true/false (bool("False") is True)."""
  if kind is bool:
    if value.lower() not in ("true", "false"):
      raise ValueError(value)
    return value.lower() == "true"
  return kind(value)


def parse_options(arg: str | None, defaults: dict) -> dict:
  """ "k=v,k=v" -> dict over `defaults` (values converted to the default's type); unknown
  keys are an error that lists the known."""
  opts = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in opts:
      raise ValueError(f"config option {item!r} is not key=value with key in {sorted(opts)}")
    try:
      opts[key] = _convert(value, type(defaults[key]))
    except ValueError:
      raise ValueError(f"config option {key}={value!r} is not a "
                       f"{type(defaults[key]).__name__}") from None
  return opts


def task_config(task_name: str, task_kwargs: dict, family: str, train_lengths: tuple,
                test_lengths: tuple, *, curriculum: float = 0.0, num_steps: int = 3000,
                batch_size: int = 32, learning_rate: float = 1e-3,
                test_examples: int = 32) -> ml_collections.ConfigDict:
  """A run of `family` (presets.SYNTHETIC_FAMILIES) on `task_name` (+ `task_kwargs`):
  trained on sizes `train_lengths` (validated on the same range), tested by eval.py on
  every size in `test_lengths`; seq_len is the longest training example rounded up to 8."""
  task = make_task(task_name, **task_kwargs)
  c = default_config()
  c.model = presets.synthetic_model_dict(family, task.vocab_size)
  c.data.task = task_name              # the synthetic task (a text corpus when empty)
  c.data.task_kwargs = dict(task_kwargs)  # its parameters (MQAR, revision)
  c.data.train_lengths = tuple(train_lengths)  # sizes seen in training (inclusive)
  c.data.curriculum = curriculum       # fraction of training that ramps the longest size up
  c.data.val_lengths = tuple(train_lengths)    # periodic validation: in-distribution sizes
  c.data.test_lengths = tuple(test_lengths)    # eval.py: every size in this range
  c.data.test_examples = test_examples  # eval.py: examples per test size
  longest = len(task.example(np.random.default_rng(0), train_lengths[1])["inputs"])
  c.seq_len = int(-(-longest // 8) * 8)
  c.batch_size = batch_size
  c.num_steps = num_steps
  c.log_every = 50
  c.eval_every = 500
  c.eval_batches = 4
  c.checkpoint_every = 500
  c.stop_at_step = 0                   # > 0: pause there (the schedule still spans num_steps)
  c.early_stop_accuracy = 0.0          # with early_stop_evals > 0: stop once that many
  c.early_stop_evals = 0               # consecutive validations reach this accuracy
  c.optimizer.learning_rate = learning_rate
  c.optimizer.warmup_steps = 100
  return c
