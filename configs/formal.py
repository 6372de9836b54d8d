"""Formal-language tasks of the xLSTM paper (Sec. 4.1): train on lengths 3..40, test 40..256.

  python train.py --config=configs/formal.py:task=parity,model=slstm --workdir=runs/parity_slstm
  python eval.py --workdir=runs/parity_slstm     # scaled accuracy over the test lengths

task: a key of xlstm_jax.tasks.FORMAL_TASKS (parity, even_pairs, cycle_navigation,
modular_arithmetic, majority, bucket_sort, repetition, reverse_string, odds_first,
missing_duplicate). model: slstm = xLSTM[0:1], mlstm = xLSTM[1:0], xlstm11 = xLSTM[1:1],
llama (Transformer), lstm (classic sigmoid LSTM); 2 blocks of width 64 (presets.
synthetic_model_dict). 8000 steps of batch 32 at peak lr 3e-3 (about 13 minutes for
xLSTM[0:1] on 2 CPU cores); the first half is a length curriculum (data.curriculum): the
longest training string grows from 3 to 40. Every other field is the default run's and
can be overridden.
"""

from configs.synthetic import parse_options, task_config
from xlstm_jax.tasks import FORMAL_TASKS


def get_config(arg: str | None = None):
  opts = parse_options(arg, {"task": "parity", "model": "slstm"})
  if opts["task"] not in FORMAL_TASKS:
    raise ValueError(f"task={opts['task']!r} is not a formal task; known: {sorted(FORMAL_TASKS)}")
  return task_config(opts["task"], {}, opts["model"], train_lengths=(3, 40),
                     test_lengths=(40, 256), curriculum=0.5, num_steps=8000,
                     learning_rate=3e-3)
