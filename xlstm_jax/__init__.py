"""xlstm_jax: xLSTM (sLSTM and mLSTM) in JAX."""

from xlstm_jax import ops

__all__ = ["ops"]
