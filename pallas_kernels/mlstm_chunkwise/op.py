"""The chunkwise mLSTM on Pallas kernels: the public op and its custom_vjp.

What runs where. Per-token and per-chunk scalars (gate cumsums, the chunk stabilizers,
decays, the stabilizer-cotangent routing) are cheap [B, H, T] work and stay in jnp,
shared with the jnp chunkwise form so the stabilizers match it bit for bit. Everything
that touches [T, D] or [D, D] arrays is a kernel:
  forward   state_scan (sequential over chunks)  -> chunk entry states (C, n)
            chunk_outputs (parallel over chunks) -> h and the per-token (qn, den, m~)
  backward  state_scan, reversed                 -> cotangents of the chunk end states
            chunk_grads (parallel over chunks)   -> dq, dk, dv and log-gate pieces
The forward saves the K chunk entry states, not T token states, like the jnp form.
Reference: `xlstm_jax.ops.mlstm_chunkwise.mlstm_chunkwise` (see `reference` below).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes
from pallas_kernels.mlstm_chunkwise.chunk_kernels import chunk_grads, chunk_outputs
from pallas_kernels.mlstm_chunkwise.state_scan import state_scan
from xlstm_jax.ops import gates
# The jnp form's gate helpers: the same stabilizers, decays and key weights.
from xlstm_jax.ops.mlstm_chunkwise import (_chunk_decays, _chunk_stabilizers, _gate_sums,
                                           mlstm_chunkwise, pad_to_chunks)


@dataclasses.dataclass(frozen=True)
class _Config:
  normalizer: str
  stabilize: bool
  eps: float
  scale: float
  blocks: BlockSizes
  interpret: object  # bool or a pltpu.InterpretParams


def mlstm_chunkwise_pallas(q, k, v, log_i, log_f, state0, *, normalizer: str = "max",
                           stabilize: bool = True, eps: float = 1e-6,
                           blocks: BlockSizes | None = None, interpret=None):
  """q, k [B, H, T, Dk] (not scaled), v [B, H, T, Dv] in the activation dtype; log gates
  [B, H, T] and state0 = (C [B,H,Dk,Dv], n [B,H,Dk], m [B,H]) in the accumulation dtype
  (float32, or float64 in tests). Returns h [B, H, T, Dv] (activation dtype) and the
  final state. Any T: the tail is padded with tokens that leave the state unchanged.

  blocks: None takes the default backend's `BlockSizes`. interpret: None interprets on
  CPU (slow, for tests); True, or a `pltpu.InterpretParams` for TPU semantics, forces it.
  """
  blocks = BlockSizes.default() if blocks is None else blocks
  if interpret is None:
    interpret = jax.default_backend() == "cpu"
  blocks.tiles(q.shape[-1], v.shape[-1])  # shape errors before tracing anything
  cfg = _Config(normalizer, stabilize, float(eps), q.shape[-1] ** -0.5, blocks, interpret)
  return _mlstm_pallas(q, k, v, log_i, log_f, tuple(state0), cfg=cfg)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _mlstm_pallas(q, k, v, log_i, log_f, state0, *, cfg):
  B, H, T, Dk = q.shape
  Dv, L = v.shape[-1], cfg.blocks.chunk
  q, k, v, log_i, log_f = pad_to_chunks(q, k, v, log_i, log_f, L)
  K = q.shape[2] // L
  flat = lambda x: x.reshape(B * H, *x.shape[2:])  # noqa: E731
  C0, n0, m0 = state0
  h, (C, n, m) = _core(flat(q), flat(k), flat(v), log_i.reshape(B * H, K, L),
                       log_f.reshape(B * H, K, L), flat(C0), flat(n0), flat(m0), cfg)
  state = (C.reshape(B, H, Dk, Dv), n.reshape(B, H, Dk), m.reshape(B, H))
  return h.reshape(B, H, K * L, Dv)[:, :, :T], state


def _col(x):
  """[BH, K, L] -> a column [BH, T, 1]."""
  return x.reshape(x.shape[0], -1, 1)


def _row(x):
  """[BH, K, L] -> rows [BH, K, 1, L]."""
  return x[:, :, None, :]


def _per_token(x_chunk, L):
  """[BH, K] -> [BH, K, L]: a per-chunk value repeated over its tokens."""
  return jnp.broadcast_to(x_chunk[..., None], (*x_chunk.shape, L))


def _two_sum(x, y):
  """(s, e) with s = fl(x + y) and s + e = x + y exactly (Knuth's TwoSum, any |x|, |y|)."""
  s = x + y
  x_part = s - y
  y_part = s - x_part
  return s, (x - x_part) + (y - y_part)


def _cumsum_hi_lo(x):
  """Inclusive cumsum over the last axis as an unevaluated pair hi + lo, good to ~eps^2 of
  the partial sums: a double-float associative scan (L is small, the arrays [BH, K, L])."""
  def add(p, r):
    hi, lo = _two_sum(p[0], r[0])
    return _two_sum(hi, lo + (p[1] + r[1]))
  return jax.lax.associative_scan(add, (x, jnp.zeros_like(x)), axis=x.ndim - 1)


def _token_log_weights(log_i, log_f, m_prev):
  """From [BH, K, L] log gates, the kernels' per-token log-weight terms: the intra weights'
  columns (b_hi, b_lo) and rows (-b_hi, log i - b_lo), and log u = b + m_{k-1} (the
  carried state's weight).

  b = cumsum(log f) in the chunk reaches |b| ~ 1e3 with extreme forget gates, and
  b_t - b_j + log i_j in one float would then be off by ~eps |b| (1e-4 in the log weight,
  even on the diagonal). As a pair the kernel forms (b_hi_t - b_hi_j) + (b_lo_t - b_lo_j +
  log i_j): the first difference rounds once relative to the segment sum itself (0 on the
  diagonal), as the jnp form's `intra_log_weights`, which sums the segment, does.
  """
  b_hi, b_lo = _cumsum_hi_lo(log_f)
  intra = (_col(b_hi), _col(b_lo), _row(-b_hi), _row(log_i - b_lo))
  return intra, (b_hi + m_prev[..., None]) + b_lo


def _forward(q, k, v, log_i, log_f, C0, n0, m0, cfg):
  """q, k, v [BH, T, D]; log gates [BH, K, L]; state [BH, ...]."""
  L = cfg.blocks.chunk
  _, g, a = _gate_sums(log_i, log_f)
  m_prev, m_last = _chunk_stabilizers(g, a, m0, cfg.stabilize)
  decay, w = _chunk_decays(g, a, m_prev, m_last)
  ones = jnp.ones_like(_col(w))
  C_in, n_in, C_last, n_last = state_scan(
      _col(_per_token(decay, L)), k, _col(w), v, ones, ones, C0, n0[:, None, :],
      blocks=cfg.blocks, reverse=False, interpret=cfg.interpret)
  intra, log_u = _token_log_weights(log_i, log_f, m_prev)
  h, qn, den, m_tok = chunk_outputs(
      q, k, v, *intra, _col(log_u), C_in, n_in,
      scale=cfg.scale, blocks=cfg.blocks, normalizer=cfg.normalizer, stabilize=cfg.stabilize,
      eps=cfg.eps, interpret=cfg.interpret)
  stats = tuple(x.reshape(log_u.shape) for x in (qn, den, m_tok))
  final = (C_last, n_last[:, 0], m_last)
  return h, final, (C_in, n_in, m_prev, *final, h, *stats)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _core(q, k, v, log_i, log_f, C0, n0, m0, cfg):
  h, final, _ = _forward(q, k, v, log_i, log_f, C0, n0, m0, cfg)
  return h, final


def _core_fwd(q, k, v, log_i, log_f, C0, n0, m0, cfg):
  h, final, saved = _forward(q, k, v, log_i, log_f, C0, n0, m0, cfg)
  return (h, final), (q, k, v, log_i, log_f, saved)


def _core_bwd(cfg, res, cotangents):
  """The jnp form's `_core_bwd`, with the [T, D] work in kernels; the derivation is in
  docs/design.md ("Chunkwise backward", "Stabilizer gradients")."""
  q, k, v, log_i, log_f, saved = res
  C_in, n_in, m_prev, C_last, n_last, m_last, h, qn, den, m_tok = saved
  dh, (dC_last, dn_last, dm_last) = cotangents
  L, stabilize = cfg.blocks.chunk, cfg.stabilize
  _, g, a = _gate_sums(log_i, log_f)
  decay, w = _chunk_decays(g, a, m_prev, m_last)
  intra, log_u = _token_log_weights(log_i, log_f, m_prev)  # as the forward's, bit for bit
  u = jnp.exp(log_u - m_tok)

  # Through h = num / den, per token (h as returned, in the activation dtype).
  dh_dot_h = (dh.astype(den.dtype) * h.astype(den.dtype)).sum(-1).reshape(den.shape)
  dqn = -dh_dot_h / den * gates.mlstm_denominator_grad(qn, m_tok, cfg.normalizer)
  dm_tok = (-dh_dot_h * cfg.eps / den if stabilize and cfg.normalizer != "none"
            else jnp.zeros_like(den))

  # Cotangents of the chunk end states, one reverse scan (values dh / den).
  dC_end, dn_end, dC0, dn0 = state_scan(
      _col(_per_token(decay, L)), q, _col(u * cfg.scale), dh, _col(1.0 / den), _col(dqn),
      dC_last, dn_last[:, None, :], blocks=cfg.blocks, reverse=True,
      interpret=cfg.interpret)

  # Stabilizer cotangents: through the argmax of every max (as the jnp form).
  inter_wins = log_u >= m_tok
  carry_wins = g + m_prev >= a.max(-1)
  dm_end = (dm_last - (dC_last * C_last).sum((-2, -1)) - (dn_last * n_last).sum(-1)
            if stabilize else jnp.zeros_like(dm_last))
  dm_from_tok = jnp.where(inter_wins, dm_tok, 0.0).sum(-1)
  step = lambda dm, xs: (jnp.where(xs[0], dm, 0.0) + xs[1], dm)  # noqa: E731
  dm0_routed, dm_end_k = jax.lax.scan(step, dm_end, (carry_wins.T, dm_from_tok.T),
                                      reverse=True)
  dm_end_k = dm_end_k.T                                             # [BH, K]

  dq, dk, dv, rowsum, colsum, d_log_u, d_log_w_state, to_j, d_decay = chunk_grads(
      q, k, v, dh, *intra, _col(log_u), _col(m_tok), _col(1.0 / den),
      _col(dqn), _col(w), _col(jnp.where(inter_wins, 0.0, dm_tok)), C_in, n_in, dC_end,
      dn_end, scale=cfg.scale, blocks=cfg.blocks, stabilize=stabilize,
      interpret=cfg.interpret)
  rowsum, colsum, d_log_u, d_log_w_state, to_j = (
      x.reshape(log_u.shape) for x in (rowsum, colsum, d_log_u, d_log_w_state, to_j))
  d_log_decay = decay * d_decay.reshape(decay.shape)

  # Log gates: log W_tj = b_t - b_j + log i_j, log u_t = b_t + m, a_t = g - b_t + log i_t,
  # log G = g + m - m'; then d log f_s = sum_{t>=s} db_t + dg. (The kernels hold b as a
  # pair b_hi + b_lo: that changes the rounding of log W, not its derivatives.)
  d_log_i = colsum + d_log_w_state
  db = rowsum - colsum + d_log_u - d_log_w_state
  dg = d_log_w_state.sum(-1) + d_log_decay
  if stabilize:
    to_t = (jnp.where(carry_wins, 0.0, dm_end_k)[..., None]
            * jax.nn.one_hot(jnp.argmax(a, -1), L, dtype=db.dtype))
    d_log_i = d_log_i + to_j + to_t
    db = db + dm_tok - to_j - to_t
    dg = dg + dm_end_k
  d_log_f = jnp.cumsum(db[..., ::-1], axis=-1)[..., ::-1] + dg[..., None]
  # m0 also enters the first chunk's weights (u, G) as a value, not only as a stabilizer.
  dm0 = dm0_routed + d_log_u[:, 0].sum(-1) + d_log_decay[:, 0]
  return dq, dk, dv, d_log_i, d_log_f, dC0, dn0[:, 0], dm0


_core.defvjp(_core_fwd, _core_bwd)


def reference(q, k, v, log_i, log_f, state0, *, normalizer="max", stabilize=True, eps=1e-6,
              chunk=64):
  """The jnp chunkwise form on the same arguments (q not scaled): what the kernels equal."""
  dtype = log_i.dtype
  q_s = q.astype(dtype) * q.shape[-1] ** -0.5
  h, state = mlstm_chunkwise(q_s, k.astype(dtype), v.astype(dtype), log_i, log_f,
                             tuple(state0), chunk_size=chunk, normalizer=normalizer,
                             stabilize=stabilize, eps=eps)
  return h.astype(q.dtype), state
