"""The gating ablation (the xLSTM paper's Table 2, bottom) on xLSTM[1:0] at the tiny ladder's size.

  python -m xlstm_jax.scaling.sweep configs/sweeps/gating.py --root=runs/gating

Rows, for the input and the forget gate of every mLSTM cell (model.igate_mode /
fgate_mode; the modes apply to sLSTM cells too, whose forget bias init differs):
"learned" = input-dependent with a learnable bias, "bias" = a learnable bias only, "fixed" =
the bias frozen at its init (mLSTM: input gate ~ 0, i.e. exp(0) = 1; forget gate 3..6,
i.e. sigmoid ~ 0.95..0.998):
  paper's row                      igate   / fgate
  No Gates                         fixed   / fixed
  Forget Gate                      fixed   / learned
  Input Gate                       learned / fixed
  Forget Gate Bias                 fixed   / bias
  Forget + Input Gate Bias         bias    / bias
  Forget Gate + Input Gate Bias    bias    / learned
  Forget Gate + Input Gate         learned / learned   (the xLSTM default)
The paper's first row (forget gate fixed at +inf, NaN there) has no counterpart. Like the
paper, the model is xLSTM[1:0] (mLSTM blocks only). Every row runs with two seeds (init and
data order), so the report can set each difference against the seed-to-seed spread.
"""

STEPS = 600
ROWS = (("fixed", "fixed"), ("fixed", "learned"), ("learned", "fixed"), ("fixed", "bias"),
        ("bias", "bias"), ("bias", "learned"), ("learned", "learned"))
SEEDS = (0, 1)


def get_sweep():
  common = {"num_steps": STEPS, "batch_size": 16, "seq_len": 64, "eval_every": 0,
            "checkpoint_every": STEPS // 4, "log_every": STEPS // 20}
  runs = [{"model.igate_mode": i, "model.fgate_mode": f, "seed": seed, **common}
          for seed in SEEDS for i, f in ROWS]
  return {"config": "configs/default.py:xlstm10_tiny", "runs": runs,
          "name_keys": ("model.igate_mode", "model.fgate_mode", "seed")}
