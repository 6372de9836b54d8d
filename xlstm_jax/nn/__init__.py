"""Flax (linen) modules built on `xlstm_jax.ops`: layers, blocks, the language model.

  ModelConfig     the frozen model boundary (arch xlstm | large | llama)
  LanguageModel   embedding -> blocks -> norm -> head; `init_state` for generation
  MLSTMBlock, SLSTMBlock, LargeBlock, LlamaBlock   the residual blocks
"""

from xlstm_jax.nn.config import ModelConfig, slstm_positions
from xlstm_jax.nn.lm import BlockStack, LanguageModel, init_params
from xlstm_jax.nn.mlstm_block import LargeBlock, MLSTMBlock
from xlstm_jax.nn.slstm_block import SLSTMBlock
from xlstm_jax.nn.transformer import LlamaBlock

__all__ = ["BlockStack", "LanguageModel", "LargeBlock", "LlamaBlock", "MLSTMBlock",
           "ModelConfig", "SLSTMBlock", "init_params", "slstm_positions"]
