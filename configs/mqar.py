"""Multi-query associative recall (MQAR, Zoology; xLSTM paper Sec. 4.1 and App. B.2).

  python train.py --config=configs/mqar.py:model=xlstm11,context=64,pairs=8 --workdir=W
  python eval.py --workdir=W     # recall accuracy, scaled (0 chance, 1 perfect)

Each example: `pairs` key-value pairs, then every key queried once at random positions of
a `context`-token sequence (FILL between); 64 keys and 64 values (chance 1/64). Trained and
tested at the one context length. model: a family of presets.SYNTHETIC_FAMILIES (slstm,
mlstm, xlstm11, llama, lstm), 2 blocks of width 64.
"""

from configs.synthetic import parse_options, task_config


def get_config(arg: str | None = None):
  opts = parse_options(arg, {"model": "xlstm11", "context": 64, "pairs": 8})
  context = opts["context"]
  return task_config("mqar", {"num_pairs": opts["pairs"], "num_keys": 64, "num_values": 64},
                     opts["model"], train_lengths=(context, context),
                     test_lengths=(context, context), test_examples=256)
