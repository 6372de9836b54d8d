"""Formal-language tasks of the xLSTM paper (Sec. 4.1): train on lengths 3..40, test 40..256.

  python train.py --config=configs/formal.py:task=parity,model=slstm --workdir=runs/parity_slstm
  python eval.py --workdir=runs/parity_slstm     # scaled accuracy over the test lengths

task: a key of xlstm_jax.tasks.FORMAL_TASKS (parity, even_pairs, cycle_navigation,
modular_arithmetic, majority, bucket_sort, repetition, reverse_string, odds_first,
missing_duplicate). model: slstm = xLSTM[0:1], mlstm = xLSTM[1:0], xlstm11 = xLSTM[1:1],
llama (Transformer), lstm (classic sigmoid LSTM); 2 blocks of width 64 (presets.
synthetic_model_dict). Every other field is the default run's and can be overridden.
"""

import ml_collections
import numpy as np

from configs.default import get_config as default_config
from xlstm_jax import presets
from xlstm_jax.tasks import FORMAL_TASKS


def parse_options(arg: str | None, defaults: dict) -> dict:
  """ "k=v,k=v" -> dict over `defaults`; unknown keys are an error that lists the known."""
  opts = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep or key not in opts:
      raise ValueError(f"config option {item!r} is not key=value with key in {sorted(opts)}")
    opts[key] = value
  return opts


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  opts = parse_options(arg, {"task": "parity", "model": "slstm"})
  if opts["task"] not in FORMAL_TASKS:
    raise ValueError(f"task={opts['task']!r} is not a formal task; known: {sorted(FORMAL_TASKS)}")
  task = FORMAL_TASKS[opts["task"]]
  c = default_config()
  c.model = presets.synthetic_model_dict(opts["model"], task.vocab_size)
  c.data.task = opts["task"]         # the synthetic task (a text corpus when empty)
  c.data.train_lengths = (3, 40)     # input lengths seen in training (inclusive)
  c.data.val_lengths = (3, 40)       # periodic validation: in-distribution lengths
  c.data.test_lengths = (40, 256)    # eval.py: length generalisation, every length
  c.data.test_examples = 32          # eval.py: examples per test length
  longest = len(task.example(np.random.default_rng(0), c.data.train_lengths[1])["inputs"])
  c.seq_len = int(-(-longest // 8) * 8)  # the longest training example, padded to 8
  c.batch_size = 32
  c.num_steps = 3000
  c.log_every = 50
  c.eval_every = 500
  c.eval_batches = 4
  c.checkpoint_every = 500
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_steps = 100
  return c
