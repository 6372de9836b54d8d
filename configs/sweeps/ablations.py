"""One-factor ablations of the xLSTM design on the tiny ladder's middle size.

  python -m xlstm_jax.scaling.sweep configs/sweeps/ablations.py --root=runs/ablations

From xlstm_tiny (mLSTM blocks with one sLSTM block; E = 64, 4 blocks), each run changes one
thing: the input gate (exp | sigmoid), the normalizer (max | abs), the stabilizer,
the causal convolutions, the sLSTM's memory mixing, and the block layout (pre up-projection
mLSTM blocks only, post up-projection sLSTM blocks only, or the mix). The first run is the
unchanged base. Dropping the normalizer is only defined with a bounded (sigmoid) input gate
(exp gating without it grows without bound, and ModelConfig refuses it), so that row changes
both and compares against the igate=sigmoid row. Same data, steps and seed for all.
"""

STEPS = 600
ABLATIONS = (
    {},                                                     # the base
    {"model.igate": "sigmoid"},
    {"model.normalizer": "abs"},
    {"model.igate": "sigmoid", "model.normalizer": "none"},  # against igate=sigmoid
    {"model.stabilize": False},
    {"model.conv_kernel_size": 0, "model.slstm_conv_kernel_size": 0},
    {"model.memory_mixing": False},
    {"model.slstm_at": ()},                                 # xLSTM[1:0]: pre up-projection
    {"model.slstm_at": (0, 1, 2, 3)},                       # xLSTM[0:1]: post up-projection
)


def get_sweep():
  common = {"num_steps": STEPS, "batch_size": 16, "seq_len": 64, "eval_every": 0,
            "checkpoint_every": STEPS // 4, "log_every": STEPS // 20}
  runs = [{**a, **common} for a in ABLATIONS]
  named = sorted({k for a in ABLATIONS for k in a})
  return {"config": "configs/default.py:xlstm_tiny", "runs": runs, "name_keys": named}
