"""Parameter and FLOP counting of model configs: a low-level utility that training (MFU)
and the scaling sweeps both use; it imports nn and jax only.

  count_params(cfg)                   exact parameter count (no allocation)
  train_flops_per_token(cfg, seq_len) model FLOPs per training token (6 N + mixing), for MFU
  peak_flops(device, dtype)           datasheet peak FLOP/s of an accelerator (None: unknown)
  xlstm_jax.counting.count            FLOPs counted from the jaxpr (model_flops, count_flops)
"""

from xlstm_jax.counting.flops import peak_flops, train_flops_per_token
from xlstm_jax.counting.params import count_params

__all__ = ["count_params", "peak_flops", "train_flops_per_token"]
