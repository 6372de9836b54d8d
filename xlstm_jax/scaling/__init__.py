"""Scaling-law tools: parameter and FLOP counting of model configs.

  count_params(cfg)                   exact parameter count (no allocation)
  train_flops_per_token(cfg, seq_len) model FLOPs per training token (6 N + mixing), for MFU
  peak_flops(device, dtype)           datasheet peak FLOP/s of an accelerator (None: unknown)
"""

from xlstm_jax.scaling.flops import peak_flops, train_flops_per_token
from xlstm_jax.scaling.params import count_params

__all__ = ["count_params", "peak_flops", "train_flops_per_token"]
