"""Pure functions for the xLSTM cells: no Flax, no configs.

  ops.mlstm / ops.mlstm_step    matrix-memory cell, forms: recurrent | parallel | chunkwise
  ops.slstm / ops.slstm_step    scalar-memory cell with memory mixing (lax.scan | fused Pallas)
  ops.lstm / ops.lstm_step      the classic sigmoid LSTM baseline, same layout as the sLSTM
Gate ablations (igate, fgate, normalizer, stabilize, gate_soft_cap) are keyword arguments
of each; see `GateOptions`.
"""

from xlstm_jax.ops.gates import GateOptions, soft_cap
from xlstm_jax.ops.mlstm import MLSTMState, mlstm, mlstm_step
from xlstm_jax.ops.mlstm import zero_state as mlstm_zero_state
from xlstm_jax.ops.slstm import BACKENDS as SLSTM_BACKENDS
from xlstm_jax.ops.slstm import LSTMState, SLSTMState, lstm, lstm_step, slstm, slstm_step

__all__ = [
    "GateOptions", "LSTMState", "MLSTMState", "SLSTMState", "SLSTM_BACKENDS", "lstm",
    "lstm_step", "mlstm", "mlstm_step", "mlstm_zero_state", "slstm", "slstm_step", "soft_cap",
]
