"""Scaling-law tools: parameter and FLOP counting of model configs, sweeps, fits.

  count_params(cfg)                   exact parameter count (no allocation)
  train_flops_per_token(cfg, seq_len) model FLOPs per training token (6 N + mixing), for MFU
  peak_flops(device, dtype)           datasheet peak FLOP/s of an accelerator (None: unknown)
  xlstm_jax.scaling.count             FLOPs counted from the jaxpr (model_flops, count_flops)
  xlstm_jax.scaling.sweep             the sweep runner (CLI: python -m xlstm_jax.scaling.sweep)
  xlstm_jax.scaling.fit               L(N, D) and IsoFLOP fits with bootstrap (CLI: python -m
                                      xlstm_jax.scaling.fit); fit_plots: summary and PNGs
The submodules are imported by name (the fits load scipy, the plots matplotlib).
"""

from xlstm_jax.scaling.flops import peak_flops, train_flops_per_token
from xlstm_jax.scaling.params import count_params

__all__ = ["count_params", "peak_flops", "train_flops_per_token"]
