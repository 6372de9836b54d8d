"""Weight import and export.

  model, params = convert.load_hf(path)          # transformers' xLSTMForCausalLM directory
  convert.save_hf(model, params, path)           # ... and back
  model, params = convert.from_torch_xlstm(config, state_dict)   # NX-AI xlstm xLSTMLMModel
"""

from xlstm_jax.convert.hf import load_hf, save_hf
from xlstm_jax.convert.torch_xlstm import from_torch_xlstm

__all__ = ["from_torch_xlstm", "load_hf", "save_hf"]
