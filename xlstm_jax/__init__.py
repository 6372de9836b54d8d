"""xlstm_jax: xLSTM (sLSTM and mLSTM) in JAX.

  xlstm_jax.ops        the cells as pure functions (every form behind one dispatcher)
  xlstm_jax.nn         Flax modules: blocks, the language model, ModelConfig
  xlstm_jax.presets    the paper's model sizes, xLSTM 7B, tiny CPU models
  xlstm_jax.convert    weights from/to transformers' xLSTM and NX-AI's xlstm
  xlstm_jax.generate   prefill + jitted step loop, constant memory for the xLSTM
"""

from xlstm_jax import convert, nn, ops, presets
from xlstm_jax.generation import generate

__all__ = ["convert", "generate", "nn", "ops", "presets"]
