"""The language model: embedding -> block stack -> post-blocks norm -> LM head.

One module serves the three architectures of `ModelConfig.arch`. Blocks are placed by
`cfg.block_types` (xLSTM[m:s] through `slstm_at`); `scan_blocks` runs identical blocks
under `nn.scan` (parameters stacked on a leading "layers" axis), `remat` rematerialises
each block in the backward pass.

  logits = model.apply({"params": p}, tokens)                       # [B, T] -> [B, T, V]
  logits, state = model.apply({"params": p}, tokens, state=s, return_state=True)
`state` carries every block's recurrent state (a KV cache for llama); start from
`model.init_state(batch, max_len)` or None (the empty state) and feed it back to continue.
With `vocab_pad_multiple` > 1 the logits have `cfg.padded_vocab_size` columns, the padded
ones PADDED_LOGIT (so every consumer, loss or sampler, ignores them).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from xlstm_jax.nn import layers
from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.nn.mlstm_block import LargeBlock, MLSTMBlock, large_block_state, mlstm_block_state
from xlstm_jax.nn.slstm_block import SLSTMBlock, slstm_block_state
from xlstm_jax.nn.transformer import LlamaBlock, llama_block_state
from xlstm_jax.ops.gates import soft_cap

PADDED_LOGIT = -1e30  # the logit of a padded vocabulary id: exp() is 0, 0 * it is not NaN

BLOCKS = {"mlstm": MLSTMBlock, "slstm": SLSTMBlock, "large": LargeBlock, "llama": LlamaBlock}


class BlockStack(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, states=None):
    cfg = self.cfg
    types = cfg.block_types
    if cfg.scan_blocks:
      cls = nn.remat(BLOCKS[types[0]], prevent_cse=False) if cfg.remat else BLOCKS[types[0]]
      scanned = nn.scan(cls, variable_axes={"params": 0}, split_rngs={"params": True},
                        in_axes=0, out_axes=0, length=cfg.num_blocks,
                        metadata_params={nn.PARTITION_NAME: "layers"})
      return scanned(cfg, name="blocks")(x, states)
    new_states = []
    for idx, kind in enumerate(types):
      cls = nn.remat(BLOCKS[kind]) if cfg.remat else BLOCKS[kind]
      extra = {"block_idx": idx} if kind == "slstm" else {}
      x, state = cls(cfg, name=f"block_{idx}", **extra)(
          x, None if states is None else states[idx])
      new_states.append(state)
    return x, new_states


class LanguageModel(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens, state=None, return_state: bool = False):
    cfg = self.cfg
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be int [B, T], got {tokens.dtype}{list(tokens.shape)}")
    E, V = cfg.embedding_dim, cfg.padded_vocab_size
    if state is None and cfg.scan_blocks and cfg.arch != "llama":
      state = self.init_state(tokens.shape[0])  # nn.scan needs a state to scan over
    emb = layers.param(self, "embedding", layers.small_init(E), (V, E), ("vocab", "embed"),
                       cfg.jnp_param_dtype)
    # the lookup reads whole rows: gather the fsdp shards of the table first (as FSDP does)
    x = jnp.take(nn.with_logical_constraint(emb, ("vocab", "act_embed")), tokens,
                 axis=0).astype(cfg.jnp_dtype)
    x = nn.with_logical_constraint(x, ("batch", "seq", "act_embed"))
    x, state = BlockStack(cfg, name="stack")(x, state)
    if cfg.add_post_blocks_norm:
      if cfg.arch == "xlstm":
        x = layers.LayerNorm(1e-5, residual_scale=True, param_dtype=cfg.jnp_param_dtype,
                             name="post_norm")(x)
      else:
        x = layers.RMSNorm(cfg.norm_eps, cfg.use_bias, param_dtype=cfg.jnp_param_dtype,
                           name="post_norm")(x)
    if cfg.tie_embeddings:
      logits = layers.token_dot(x, emb.astype(x.dtype).T)
    else:
      logits = layers.Dense(V, ("embed", "vocab"), layers.small_init(E), name="lm_head",
                            dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype)(x)
    logits = soft_cap(logits.astype(jnp.float32), cfg.logit_soft_cap)
    logits = nn.with_logical_constraint(logits, ("batch", "seq", "act_vocab"))
    if V > cfg.vocab_size:  # padded ids are never tokens: out of the loss and of sampling
      logits = jnp.where(jnp.arange(V) < cfg.vocab_size, logits, PADDED_LOGIT)
    return (logits, state) if return_state else logits

  def init_state(self, batch: int, max_len: int | None = None):
    """The empty state of every block (llama: a KV cache of `max_len` positions)."""
    cfg = self.cfg
    if cfg.arch == "llama" and max_len is None:
      raise ValueError("llama's state is a KV cache: init_state needs max_len")
    make = {"mlstm": lambda: mlstm_block_state(cfg, batch),
            "slstm": lambda: slstm_block_state(cfg, batch),
            "large": lambda: large_block_state(cfg, batch),
            "llama": lambda: llama_block_state(cfg, batch, max_len)}
    states = [make[kind]() for kind in cfg.block_types]
    if cfg.scan_blocks:
      return jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    return states


def init_params(model: LanguageModel, rng: jax.Array, batch: int = 1, seq_len: int = 8):
  """Unboxed float parameters (logical axis metadata stripped)."""
  variables = model.init(rng, jnp.zeros((batch, seq_len), jnp.int32))
  return nn.unbox(variables["params"])
