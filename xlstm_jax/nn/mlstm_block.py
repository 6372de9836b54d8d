"""mLSTM blocks: the NeurIPS pre-up-projection block and the large (xLSTM 7B) block.

Both are residual: x -> x + block(norm(x)), and both take and return a state so a sequence
can be continued (prefill, then one token at a time). A None state is the empty state.
Layouts follow the references (NX-AI `xlstm`, transformers' xLSTM) so weights convert 1:1.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from xlstm_jax import ops
from xlstm_jax.nn import layers
from xlstm_jax.nn.config import ModelConfig


def _to_heads(x, H):
  """[B, T, H*D] -> [B, H, T, D]."""
  B, T, _ = x.shape
  return x.reshape(B, T, H, -1).transpose(0, 2, 1, 3)


def run_mlstm_cell(cfg: ModelConfig, q, k, v, i, f, state):
  """q, k [B, T, H*Dk], v [B, T, H*Dv], i, f [B, T, H] -> (h [B, T, H, Dv], cell state).

  One token with a state takes the step form (generation); otherwise the configured form.
  """
  H = cfg.num_heads
  heads_BHTD = ("batch", "act_heads", "seq", "head_dim")  # logical axes (xlstm_jax.sharding)
  q, k, v = (nn.with_logical_constraint(_to_heads(x, H), heads_BHTD) for x in (q, k, v))
  i, f = (nn.with_logical_constraint(x.transpose(0, 2, 1), ("batch", "act_heads", "seq"))
          for x in (i, f))  # [B, T, H] -> [B, H, T]
  if q.shape[2] == 1 and state is not None:
    h, state = ops.mlstm_step(state, q[:, :, 0], k[:, :, 0], v[:, :, 0], i[:, :, 0],
                              f[:, :, 0], **cfg.gate_kwargs)
    h = h[:, :, None]
  else:
    h, state = ops.mlstm(q, k, v, i, f, backend=cfg.backend, chunk_size=cfg.chunk_size,
                         initial_state=state, return_state=True, **cfg.gate_kwargs)
  h = nn.with_logical_constraint(h.transpose(0, 2, 1, 3), ("batch", "seq", "act_heads", "head_dim"))
  return h, state


def mlstm_block_state(cfg: ModelConfig, batch: int) -> dict:
  """The empty state of an xlstm-arch mLSTM block."""
  inner, H = cfg.mlstm_inner_dim, cfg.num_heads
  state = {"cell": ops.mlstm_zero_state(batch, H, inner // H, inner // H)}
  if cfg.conv_kernel_size > 0:
    state["conv"] = jnp.zeros((batch, cfg.conv_kernel_size - 1, inner), cfg.jnp_dtype)
  return state


def large_block_state(cfg: ModelConfig, batch: int) -> dict:
  H = cfg.num_heads
  return {"cell": ops.mlstm_zero_state(batch, H, cfg.qk_dim // H, cfg.v_dim // H)}


class MLSTMBlock(nn.Module):
  """Pre-up-projection mLSTM block (xLSTM NeurIPS paper, Fig. 10).

  LayerNorm -> up-projection into (x, z) -> causal conv + SiLU on x -> block-diagonal q, k
  (conv path) and v (x path) -> mLSTM cell (gates from [q, k, v]) -> per-head norm
  -> + learnable skip of the conv path -> * SiLU(z) -> down-projection -> residual.
  """

  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, state=None):
    cfg = self.cfg
    E, inner, H = cfg.embedding_dim, cfg.mlstm_inner_dim, cfg.num_heads
    if state is None:
      state = mlstm_block_state(cfg, x.shape[0])
    kw = dict(dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype)
    pdt = cfg.jnp_param_dtype
    x = nn.with_logical_constraint(x, ("batch", "seq", "act_embed"))
    h = layers.LayerNorm(1e-5, residual_scale=True, param_dtype=pdt, name="norm")(x)
    up = layers.Dense(2 * inner, ("embed", "mlp"), layers.small_init(E), use_bias=cfg.use_bias,
                      name="proj_up", **kw)(h)
    x_m, z = jnp.split(up, 2, axis=-1)
    new_state = {}
    if cfg.conv_kernel_size > 0:
      x_c, new_state["conv"] = layers.CausalConv1D(cfg.conv_kernel_size, name="conv", **kw)(
          x_m, state["conv"])
      x_c = jax.nn.silu(x_c)
    else:
      x_c = x_m
    n_proj = inner // cfg.qkv_proj_blocksize
    proj = lambda name: layers.HeadwiseLinear(n_proj, kernel_init=layers.small_init(E),
                                              use_bias=cfg.use_bias, name=name, **kw)
    q, k, v = proj("q")(x_c), proj("k")(x_c), proj("v")(x_m)
    i, f = self._gates((q, k, v))
    h_cell, new_state["cell"] = run_mlstm_cell(cfg, q, k, v, i, f, state["cell"])
    h_norm = layers.MultiHeadNorm("layer", 1e-5, residual_scale=True, param_dtype=pdt,
                                  name="outnorm")(h_cell)
    skip = layers.param(self, "skip", nn.initializers.ones, (inner,), ("mlp",), pdt)
    h = (h_norm + skip.astype(h_norm.dtype) * x_c) * jax.nn.silu(z)
    y = layers.Dense(E, ("mlp", "embed"), layers.wang_init(E, cfg.num_blocks),
                     use_bias=cfg.use_bias, name="proj_down", **kw)(h)
    x = nn.with_logical_constraint(x + y.astype(x.dtype), ("batch", "seq", "act_embed"))
    return x, new_state

  def _gates(self, parts):
    """Input and forget gate pre-activations [B, T, H] from parts = (q, k, v). A gate is
    learned (a linear map of the concatenation [q, k, v] + bias), bias (a learnable bias,
    the same at every step) or fixed (that bias frozen at its init). The learned gates'
    kernels sit side by side, [3 inner, 2 H], and multiply each part's rows of them: one
    skinny matmul per part for both gates, and the concatenation is never built (7% of
    the benchmark's CPU training step)."""
    cfg = self.cfg
    H = cfg.num_heads
    gates = {"igate": (cfg.igate_mode, layers.constant_normal_init(cfg.igate_bias_init, 0.1)),
             "fgate": (cfg.fgate_mode, layers.linspace_init(3.0, 6.0))}
    out, learned = {}, {}
    for name, (mode, bias_init) in gates.items():
      if mode == "learned":
        learned[name] = _GateParams(H, bias_init, cfg.jnp_param_dtype, name=name)(
            sum(x.shape[-1] for x in parts))
        continue
      bias = layers.param(self, f"{name}_bias", bias_init, (H,), ("heads",), cfg.jnp_param_dtype)
      if mode == "fixed":
        bias = jax.lax.stop_gradient(bias)
      out[name] = jnp.broadcast_to(bias.astype(cfg.jnp_dtype), (*parts[0].shape[:-1], H))
    if learned:
      dt = cfg.jnp_dtype
      w = jnp.concatenate([w for w, _ in learned.values()], axis=-1).astype(dt)
      pre = jnp.concatenate([b for _, b in learned.values()]).astype(dt)
      row = 0
      for x in parts:
        pre = pre + layers.token_dot(x.astype(dt), w[row:row + x.shape[-1]])
        row += x.shape[-1]
      out.update(zip(learned, jnp.split(pre, len(learned), axis=-1)))
    return out["igate"], out["fgate"]


class _GateParams(nn.Module):
  """A learned gate's kernel [n_in, H] (zero init) and bias [H]: the parameters, names and
  logical axes of layers.Dense(H, ("mlp", "heads"), use_bias=True), for MLSTMBlock._gates
  to apply together with the other gate's."""

  num_heads: int
  bias_init: layers.Init
  param_dtype: Any

  @nn.compact
  def __call__(self, n_in: int):
    kernel = layers.param(self, "kernel", nn.initializers.zeros, (n_in, self.num_heads),
                          ("mlp", "heads"), self.param_dtype)
    bias = layers.param(self, "bias", self.bias_init, (self.num_heads,), ("heads",),
                        self.param_dtype)
    return kernel, bias


class LargeBlock(nn.Module):
  """The xLSTM 7B block (transformers' xLSTMBlock).

  RMSNorm -> q, k [qk_dim], v, output gate [v_dim], input/forget gates [H] from the normed
  input -> mLSTM (soft-capped gates) -> per-head layer norm -> * sigmoid(o) -> out_proj
  -> residual; RMSNorm -> SwiGLU -> residual. Initialisation as transformers'
  `xLSTMPreTrainedModel._init_weights`: every linear whose name holds "gate" (input,
  forget, output gate and the FFN gate) starts at zero weight; input-gate bias
  `igate_bias_init` (-10), forget-gate bias linspace(3, 6).
  """

  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, state=None):
    cfg = self.cfg
    E, H, L = cfg.embedding_dim, cfg.num_heads, cfg.num_blocks
    if state is None:
      state = large_block_state(cfg, x.shape[0])
    kw = dict(dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype)
    norm = lambda name: layers.RMSNorm(cfg.norm_eps, cfg.use_bias,
                                       param_dtype=cfg.jnp_param_dtype, name=name)
    small, zeros = layers.small_init(E), nn.initializers.zeros
    dense = lambda n, axes, init, name, bias=cfg.use_bias, bias_init=zeros: layers.Dense(
        n, axes, init, bias_init, use_bias=bias, name=name, **kw)
    x = nn.with_logical_constraint(x, ("batch", "seq", "act_embed"))
    h = norm("norm_mlstm")(x)
    q = dense(cfg.qk_dim, ("embed", "mlp"), small, "q")(h)
    k = dense(cfg.qk_dim, ("embed", "mlp"), small, "k")(h)
    v = dense(cfg.v_dim, ("embed", "mlp"), small, "v")(h)
    o = dense(cfg.v_dim, ("embed", "mlp"), zeros, "ogate")(h)
    i = dense(H, ("embed", "heads"), zeros, "igate", True,
              nn.initializers.constant(cfg.igate_bias_init))(h)
    f = dense(H, ("embed", "heads"), zeros, "fgate", True, layers.linspace_init(3.0, 6.0))(h)
    h_cell, cell = run_mlstm_cell(cfg, q, k, v, i, f, state["cell"])
    h_norm = layers.MultiHeadNorm("layer", cfg.norm_eps, cfg.use_bias,
                                  param_dtype=cfg.jnp_param_dtype, name="outnorm")(h_cell)
    y = dense(E, ("mlp", "embed"), layers.wang_init(E, L), "out_proj")(
        jax.nn.sigmoid(o) * h_norm)
    x = x + y.astype(x.dtype)
    ffn = layers.GatedFFN(cfg.ffn_dim, cfg.ffn_act, cfg.use_bias, gate_init=zeros, up_init=small,
                          down_init=layers.wang_init(cfg.ffn_dim, L), name="ffn", **kw)
    x = x + ffn(norm("norm_ffn")(x)).astype(x.dtype)
    return nn.with_logical_constraint(x, ("batch", "seq", "act_embed")), {"cell": cell}
