"""Pallas kernels, each with its jnp reference beside it and a custom_vjp.

  mlstm_chunkwise   the chunkwise mLSTM, forward and backward (GPU and TPU)
"""
