"""Scaling-law tools: parameter (and FLOP) counting of model configs."""

from xlstm_jax.scaling.params import count_params

__all__ = ["count_params"]
