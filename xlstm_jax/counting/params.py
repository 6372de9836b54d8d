"""Parameter counts of a model config, from the built model's abstract parameters."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.nn.lm import LanguageModel


def count_params(cfg: ModelConfig) -> int:
  """Exact number of parameters, without allocating them (jax.eval_shape)."""
  model = LanguageModel(cfg)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
