"""Keep the most important item (the revision task): exponential vs sigmoid input gating.

  python train.py --config=configs/revision.py:model=mlstm,igate=exp --workdir=W
  python train.py --config=configs/revision.py:model=mlstm,igate=sigmoid --workdir=W2
  python eval.py --workdir=W     # scaled accuracy at stream lengths 2..32

A stream of (importance, item) pairs (8 levels by default, 16 items), then QUERY: the target is the
item of the highest importance, wherever it came (xlstm_jax.tasks.recall.Revision). An
exponential input gate with the normalizer can weight each item by exp(importance) and let
the most important one dominate the memory; a sigmoid gate saturates at 1 and must revise
through the recurrence. model: a family of presets.SYNTHETIC_FAMILIES; igate: exp or
sigmoid, the input gate of every mLSTM and sLSTM cell (the lstm family takes sigmoid only);
levels: the number of importance levels (8; more levels leave fewer spare units per level).
"""

from configs.synthetic import parse_options, task_config


def get_config(arg: str | None = None):
  opts = parse_options(arg, {"model": "mlstm", "igate": "exp", "levels": 8})
  if opts["igate"] not in ("exp", "sigmoid"):
    raise ValueError(f"igate={opts['igate']!r} must be exp or sigmoid")
  if opts["model"] == "lstm" and opts["igate"] != "sigmoid":
    raise ValueError(f"model=lstm has a sigmoid input gate only (got igate={opts['igate']!r}); "
                     "set igate=sigmoid, or use model=slstm for the exponential gate")
  c = task_config("revision", {"num_items": 16, "num_importances": opts["levels"]}, opts["model"],
                  train_lengths=(2, 32), test_lengths=(2, 32), test_examples=64)
  c.model.igate = opts["igate"]
  return c
