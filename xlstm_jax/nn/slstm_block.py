"""The sLSTM block with post up-projection (xLSTM NeurIPS paper, Fig. 9).

LayerNorm -> causal conv + SiLU feeding the i, f gates -> block-diagonal gate projections
-> sLSTM cell (block-diagonal recurrent matrix R) -> per-head norm -> residual;
LayerNorm -> gated FFN (GeLU, factor 4/3) -> residual. `slstm_cell="lstm"` swaps in the
classic sigmoid LSTM, `memory_mixing=False` fixes R = 0; `igate_mode` / `fgate_mode` "bias"
drop a gate's input and recurrent weights (its bias alone), "fixed" also freezes the bias.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from xlstm_jax import ops
from xlstm_jax.nn import layers
from xlstm_jax.nn.config import ModelConfig


def slstm_block_state(cfg: ModelConfig, batch: int) -> dict:
  """The empty state of an sLSTM block."""
  H, E = cfg.slstm_num_heads, cfg.embedding_dim
  zeros = jnp.zeros((batch, H, E // H), jnp.float32)
  cell_cls = ops.SLSTMState if cfg.slstm_cell == "slstm" else ops.LSTMState
  state = {"cell": cell_cls(*(zeros,) * len(cell_cls._fields))}
  if cfg.slstm_conv_kernel_size > 0:
    state["conv"] = jnp.zeros((batch, cfg.slstm_conv_kernel_size - 1, E), cfg.jnp_dtype)
  return state


def forget_bias_init(kind: str, block_idx: int, num_blocks: int) -> layers.Init:
  """Bias init [4, H, D]: zero for i, z, o; the forget gate per `kind`.

  powerlaw_blockdependent: -(-5 + 12 (d / (D-1))^(0.3 + 1.3 r)), r = block_idx / (L-1): deeper
  blocks start with longer memories. linspace: 3..6 over d. zeros: 0.
  """
  def init(key, shape, dtype=jnp.float32):
    del key
    _, H, D = shape
    d = jnp.arange(D, dtype=jnp.float32)
    if kind == "powerlaw_blockdependent":
      ratio = block_idx / (num_blocks - 1) if num_blocks > 1 else 0.0
      f = -(-5.0 + 12.0 * (d / max(D - 1, 1)) ** (0.3 + 1.3 * ratio))
    elif kind == "linspace":
      f = jnp.linspace(3.0, 6.0, D)
    else:
      f = jnp.zeros((D,))
    return jnp.zeros(shape, dtype).at[1].set(jnp.broadcast_to(f, (H, D)).astype(dtype))
  return init


class SLSTMBlock(nn.Module):
  cfg: ModelConfig
  block_idx: int = 0

  @nn.compact
  def __call__(self, x, state=None):
    cfg = self.cfg
    E, H = cfg.embedding_dim, cfg.slstm_num_heads
    D = E // H
    if state is None:
      state = slstm_block_state(cfg, x.shape[0])
    kw = dict(dtype=cfg.jnp_dtype, param_dtype=cfg.jnp_param_dtype)
    pdt = cfg.jnp_param_dtype
    x = nn.with_logical_constraint(x, ("batch", "seq", "act_embed"))
    h = layers.LayerNorm(1e-5, residual_scale=True, param_dtype=pdt, name="norm")(x)
    new_state = {}
    if cfg.slstm_conv_kernel_size > 0:
      h_c, new_state["conv"] = layers.CausalConv1D(cfg.slstm_conv_kernel_size, axis_name="embed",
                                                   name="conv", **kw)(h, state["conv"])
      h_c = jax.nn.silu(h_c)
    else:
      h_c = h
    proj = lambda name: layers.HeadwiseLinear(H, kernel_init=layers.small_init(E),
                                              axis_name="embed", name=name, **kw)
    modes = {"igate": cfg.igate_mode, "fgate": cfg.fgate_mode}
    gated = lambda name: (proj(name)(h_c) if modes[name] == "learned"  # noqa: E731
                          else jnp.zeros(h_c.shape, h_c.dtype))  # bias / fixed: input-free
    pre = jnp.stack([gated("igate"), gated("fgate"), proj("zgate")(h), proj("ogate")(h)],
                    axis=2)
    B, T = x.shape[:2]
    pre = nn.with_logical_constraint(pre.reshape(B, T, 4, H, D),
                                     ("batch", "seq", None, "act_heads", "head_dim"))
    if cfg.memory_mixing:
      r = layers.param(self, "recurrent_kernel", nn.initializers.zeros, (H, D, 4, D),
                       ("heads", None, None, None), pdt)
    else:
      r = jnp.zeros((H, D, 4, D), pdt)
    b = layers.param(self, "bias", forget_bias_init(cfg.slstm_fgate_bias_init, self.block_idx,
                                                    cfg.num_blocks),
                     (4, H, D), (None, "heads", None), pdt)
    for g, mode in enumerate((cfg.igate_mode, cfg.fgate_mode)):  # gate ablations
      if mode != "learned":
        r = r.at[:, :, g].set(0.0)                # no recurrent input either
      if mode == "fixed":
        b = b.at[g].set(jax.lax.stop_gradient(b[g]))
    h_cell, new_state["cell"] = self._cell(pre, r, b, state["cell"])
    h_cell = nn.with_logical_constraint(h_cell, ("batch", "seq", "act_heads", "head_dim"))
    y = layers.MultiHeadNorm("layer", 1e-5, residual_scale=True, axis_name="embed",
                             param_dtype=pdt, name="outnorm")(h_cell)
    x = x + y.astype(x.dtype)
    h = layers.LayerNorm(1e-5, residual_scale=True, param_dtype=pdt, name="norm_ffn")(x)
    ffn = layers.GatedFFN(cfg.ffn_dim, cfg.ffn_act, cfg.use_bias, gate_init=layers.small_init(E),
                          up_init=layers.small_init(E),
                          down_init=layers.wang_init(E, cfg.num_blocks), name="ffn", **kw)
    y = nn.with_logical_constraint(x + ffn(h).astype(x.dtype), ("batch", "seq", "act_embed"))
    return y, new_state

  def _cell(self, pre, r, b, state):
    cfg = self.cfg
    step = pre.shape[1] == 1
    if cfg.slstm_cell == "lstm":
      if step:
        h, state = ops.lstm_step(state, pre[:, 0], r, b)
        return h[:, None], state
      return ops.lstm(pre, r, b, initial_state=state, return_state=True,
                      backend=cfg.slstm_form)
    if step:
      h, state = ops.slstm_step(state, pre[:, 0], r, b, **cfg.gate_kwargs)
      return h[:, None], state
    return ops.slstm(pre, r, b, initial_state=state, return_state=True,
                     backend=cfg.slstm_form, **cfg.gate_kwargs)
