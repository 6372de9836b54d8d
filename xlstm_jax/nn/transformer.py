"""The Llama-style Transformer baseline: RMSNorm, RoPE, causal attention, SwiGLU.

Attention runs through `jax.nn.dot_product_attention` (cuDNN flash attention where jax picks
it). For generation a block carries a static KV cache {k, v [B, S, H, D], pos}: prefill
writes positions [pos, pos+T), each decode step one more, and queries see keys <= their
position. Its memory grows with the cache length S, unlike the xLSTM state.
With `attn_conv_kernel_size` K > 0, q and k are read from a causal depthwise conv (+ SiLU)
of the normed input and v from the input itself, as in the mLSTM block (and Zoology's
attention baseline, a short conv before attention): a key can then carry the token before
it, which associative recall needs and a plain RoPE Transformer must learn as a separate
previous-token head. The conv's last K-1 inputs join the cache as "conv".
Initialisation as the xLSTM blocks: small init on the input projections (q, k, v, FFN
gate/up), Wang init on the residual outputs (o, FFN down); untied embeddings by default.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from xlstm_jax.nn import layers
from xlstm_jax.nn.config import ModelConfig


def rope(x, positions, theta: float):
  """Rotary embedding (rotate-half layout) of x [B, T, H, D] at integer positions [T]."""
  D = x.shape[-1]
  freqs = theta ** (-jnp.arange(0, D, 2, dtype=jnp.float32) / D)
  angles = positions.astype(jnp.float32)[:, None] * freqs[None]
  sin, cos = (fn(angles)[None, :, None, :] for fn in (jnp.sin, jnp.cos))
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def llama_block_state(cfg: ModelConfig, batch: int, max_len: int) -> dict:
  """An empty KV cache of `max_len` positions."""
  H = cfg.num_heads
  shape = (batch, max_len, H, cfg.embedding_dim // H)
  state = {"k": jnp.zeros(shape, cfg.jnp_dtype), "v": jnp.zeros(shape, cfg.jnp_dtype),
           "pos": jnp.zeros((), jnp.int32)}
  if cfg.attn_conv_kernel_size > 0:
    K = cfg.attn_conv_kernel_size
    state["conv"] = jnp.zeros((batch, K - 1, cfg.embedding_dim), cfg.jnp_dtype)
  return state


class LlamaBlock(nn.Module):
  """x + attn(RMSNorm(x)); x + SwiGLU(RMSNorm(x)). state None: no cache (training)."""

  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, state=None):
    cfg = self.cfg
    B, T, E = x.shape
    H = cfg.num_heads
    kw = dict(use_bias=cfg.use_bias, dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype)
    norm = lambda name: layers.RMSNorm(cfg.norm_eps, param_dtype=cfg.jnp_param_dtype, name=name)
    small, wang = layers.small_init(E), layers.wang_init(E, cfg.num_blocks)
    heads = ("batch", "seq", "act_heads", "head_dim")
    x = nn.with_logical_constraint(x, ("batch", "seq", "act_embed"))
    h = norm("norm_attn")(x)
    h_qk, conv_state = h, None
    if cfg.attn_conv_kernel_size > 0:
      h_qk, conv_state = layers.CausalConv1D(
          cfg.attn_conv_kernel_size, axis_name="embed", name="conv", dtype=cfg.jnp_dtype,
          param_dtype=cfg.jnp_param_dtype)(h, None if state is None else state["conv"])
      h_qk = nn.silu(h_qk)
    q, k, v = (nn.with_logical_constraint(layers.Dense(E, ("embed", "mlp"), small, name=n, **kw)(
        inp).reshape(B, T, H, -1), heads) for n, inp in (("q", h_qk), ("k", h_qk), ("v", h)))
    pos = jnp.zeros((), jnp.int32) if state is None else state["pos"]
    positions = pos + jnp.arange(T)
    q, k = rope(q, positions, cfg.rope_theta), rope(k, positions, cfg.rope_theta)
    if state is None:
      out = jax.nn.dot_product_attention(q, k, v, is_causal=True)
      new_state = None
    else:
      k_all = jax.lax.dynamic_update_slice(state["k"], k.astype(state["k"].dtype), (0, pos, 0, 0))
      v_all = jax.lax.dynamic_update_slice(state["v"], v.astype(state["v"].dtype), (0, pos, 0, 0))
      visible = jnp.arange(k_all.shape[1])[None, :] <= positions[:, None]  # [T, S]
      out = jax.nn.dot_product_attention(q, k_all.astype(q.dtype), v_all.astype(q.dtype),
                                         mask=visible[None, None])
      new_state = {"k": k_all, "v": v_all, "pos": pos + T}
      if conv_state is not None:
        new_state["conv"] = conv_state
    out = nn.with_logical_constraint(out, heads)
    x = x + layers.Dense(E, ("mlp", "embed"), wang, name="o", **kw)(
        out.reshape(B, T, E)).astype(x.dtype)
    ffn = layers.GatedFFN(cfg.ffn_dim, cfg.ffn_act, cfg.use_bias, gate_init=small, up_init=small,
                          down_init=wang, dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype,
                          name="ffn")
    x = x + ffn(norm("norm_ffn")(x)).astype(x.dtype)
    return nn.with_logical_constraint(x, ("batch", "seq", "act_embed")), new_state
