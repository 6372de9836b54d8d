"""xlstm_jax: xLSTM (sLSTM and mLSTM) in JAX.

  xlstm_jax.ops        the cells as pure functions (every form behind one dispatcher)
  xlstm_jax.nn         Flax modules: blocks, the language model, ModelConfig
  xlstm_jax.presets    the paper's model sizes, xLSTM 7B, tiny CPU models
  xlstm_jax.convert    weights from/to transformers' xLSTM and NX-AI's xlstm
  xlstm_jax.generate   prefill + jitted step loop, constant memory for the xLSTM

The subpackages load on first access (PEP 562), so `import xlstm_jax.ops` imports jax and
numpy only, not Flax or the converters.
"""

import importlib

__all__ = ["convert", "generate", "nn", "ops", "presets"]

_SUBMODULES = ("convert", "nn", "ops", "presets")


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"xlstm_jax.{name}")
  if name == "generate":
    return importlib.import_module("xlstm_jax.generation").generate
  raise AttributeError(f"module 'xlstm_jax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
