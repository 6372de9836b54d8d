"""Multi-query associative recall (MQAR, Zoology; xLSTM paper Sec. 4.1 and App. B.2).

  python train.py --config=configs/mqar.py:model=xlstm11,context=64,pairs=8 --workdir=W
  python eval.py --workdir=W     # recall accuracy, scaled (0 chance, 1 perfect)

Each example: `pairs` key-value pairs, then every key queried once at random positions of
a `context`-token sequence (FILL between); 64 keys and 64 values (chance 1/64). Trained and
tested at the one context length. model: a family of presets.SYNTHETIC_FAMILIES (slstm,
mlstm, xlstm11, llama, lstm), 2 blocks of width 64.

conv (default 4): the width of every block's short causal conv: the mLSTM's before q and
k, the sLSTM's before its gates, and for llama a conv before q and k
(`model.attn_conv_kernel_size`), as Zoology's attention baseline has (a BaseConv of width
3 before attention). conv=0 for llama is the plain RoPE Transformer: it must learn a
previous-token head to bind a value to its key, and at this budget it does not (it sits at
the ln 8 plateau, scaled accuracy ~0.15, for 18.5k steps; docs/results/issue21.md).
"""

from configs.synthetic import parse_options, task_config


def get_config(arg: str | None = None):
  opts = parse_options(arg, {"model": "xlstm11", "context": 64, "pairs": 8, "conv": 4})
  context, conv = opts["context"], opts["conv"]
  if conv < 0:
    raise ValueError(f"conv={conv} must be >= 0 (0: no short conv)")
  c = task_config("mqar", {"num_pairs": opts["pairs"], "num_keys": 64, "num_values": 64},
                  opts["model"], train_lengths=(context, context),
                  test_lengths=(context, context), test_examples=256)
  if opts["model"] == "llama":
    c.model.attn_conv_kernel_size = conv
  else:
    c.model.conv_kernel_size = conv
    c.model.slstm_conv_kernel_size = conv
  return c
