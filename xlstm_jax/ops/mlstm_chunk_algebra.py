"""The chunkwise mLSTM's per-token and per-chunk scalar algebra: public, shared by the jnp
chunkwise form (`ops/mlstm_chunkwise.py`) and the Pallas kernels (`pallas_kernels/`).

Both forms run the same gate sums, chunk stabilizers and decays in the forward, and the
same cotangent routing in the backward, so their stabilizers agree bit for bit and the
derivation (docs/design.md, "Chunkwise backward", "Stabilizer gradients") lives once.
Everything here is cheap [..., K, L] or [..., K] work on log gates; the [T, D] and
[D, D] work stays with each form.

Axes: the chunk axis K is the second to last of per-token arrays [..., K, L] and the last
of per-chunk arrays [..., K]; functions that say "per chunk" also take one chunk ([L]
arrays, scalars per chunk). Gates are in log space, in the accumulation dtype.

The kernels import this module and jax only; it re-exports the readout denominator and
`LOG_ZERO` from `gates` for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from xlstm_jax.ops.gates import LOG_ZERO, mlstm_denominator, mlstm_denominator_grad

__all__ = [
    "LOG_ZERO", "chunk_decays", "chunk_stabilizers", "denominator_cotangents",
    "forget_gate_cotangent", "gate_sums", "intra_argmax_cotangent", "log_gate_cotangents",
    "mlstm_denominator", "mlstm_denominator_grad", "pad_to_chunks", "route_stabilizers",
    "stabilizer_cotangents",
]


def pad_to_chunks(q, k, v, log_i, log_f, chunk):
  """Pads T to a multiple of `chunk` with tokens whose input gate is zero (log i = LOG_ZERO)
  and forget gate one (log f = 0): they leave the state, and so every output, unchanged."""
  pad = -q.shape[2] % chunk
  if not pad:
    return q, k, v, log_i, log_f
  widths = ((0, 0), (0, 0), (0, pad))
  q, k, v = (jnp.pad(x, widths + ((0, 0),)) for x in (q, k, v))
  return (q, k, v, jnp.pad(log_i, widths, constant_values=LOG_ZERO), jnp.pad(log_f, widths))


# --- Forward -------------------------------------------------------------------------


def gate_sums(log_i, log_f):
  """b_t = sum_{s<=t} log f_s, g = b_L, a_t = sum_{s>t} log f_s + log i_t (last axis).
  a is a reverse cumsum, not g - b_t, so large |log f| cause no cancellation."""
  b = jnp.cumsum(log_f, axis=-1)
  rev = jnp.cumsum(log_f[..., ::-1], axis=-1)[..., ::-1]  # sum_{s>=t}
  a = jnp.concatenate([rev[..., 1:], jnp.zeros_like(rev[..., :1])], axis=-1) + log_i
  return b, b[..., -1], a


def chunk_stabilizers(g, a, m0, stabilize):
  """m_k = max(g_k + m_{k-1}, max_t a_t) per chunk; returns (m_{k-1} per chunk, m_K).
  g [..., K], a [..., K, L], m0 [...]."""
  if not stabilize:
    m_prev = jnp.concatenate([m0[..., None], jnp.zeros_like(g[..., 1:])], axis=-1)
    return m_prev, jnp.zeros_like(m0)
  # x -> max(x + g, A) maps compose associatively: (g1, A1) then (g2, A2) is
  # (g1 + g2, max(A1 + g2, A2)). Fold m0 into the first chunk, then scan.
  a_max = a.max(-1)
  a_max = a_max.at[..., 0].set(jnp.maximum(g[..., 0] + m0, a_max[..., 0]))
  combine = lambda x, y: (x[0] + y[0], jnp.maximum(x[1] + y[0], y[1]))  # noqa: E731
  _, m = jax.lax.associative_scan(combine, (g, a_max), axis=g.ndim - 1)
  return jnp.concatenate([m0[..., None], m[..., :-1]], axis=-1), m[..., -1]


def chunk_decays(g, a, m_prev, m_last):
  """G_k = exp(g + m_{k-1} - m_k) [..., K] and the key weights w_t = exp(a_t - m_k)."""
  m_next = jnp.concatenate([m_prev[..., 1:], m_last[..., None]], axis=-1)
  return jnp.exp(g + m_prev - m_next), jnp.exp(a - m_next[..., None])


# --- Backward ------------------------------------------------------------------------


def denominator_cotangents(dh_dot_h, qn, den, m_tok, *, normalizer, stabilize, eps):
  """Through h = num / den per token, given <dh, h>: the cotangents of q.n (dqn) and of
  the token stabilizer m~ (dm_tok), which h depends on itself only through eps."""
  dqn = -dh_dot_h / den * mlstm_denominator_grad(qn, m_tok, normalizer)
  dm_tok = (-dh_dot_h * eps / den if stabilize and normalizer != "none"
            else jnp.zeros_like(den))
  return dqn, dm_tok


def stabilizer_cotangents(dm_tok, inter_wins, carry_wins, state_last, d_state_last, *,
                          stabilize):
  """The stabilizer cotangent of every chunk end, by a reverse scan over chunks.

  dm_tok, inter_wins [..., K, L] (inter_wins: m~_t came from the carried state);
  carry_wins [..., K] (m_k came from m_{k-1}); state_last = (C, n, m) final and
  d_state_last its cotangent. The final m's value cancels in the returned state
  (true memory exp(m) C), so its cotangent is dm - <dC, C> - <dn, n>. Then
  dm_{k-1} = [carry won] dm_k + the eps cotangents of tokens whose m~ came from m_{k-1}.
  Returns (dm routed to m0 [...], dm of each chunk's end state [..., K]).
  """
  C_last, n_last, _ = state_last
  dC_last, dn_last, dm_last = d_state_last
  dm_end = (dm_last - (dC_last * C_last).sum((-2, -1)) - (dn_last * n_last).sum(-1)
            if stabilize else jnp.zeros_like(dm_last))
  dm_from_tok = jnp.where(inter_wins, dm_tok, 0.0).sum(-1)
  step = lambda dm, xs: (jnp.where(xs[0], dm, 0.0) + xs[1], dm)  # noqa: E731
  dm0_routed, dm_end_k = jax.lax.scan(
      step, dm_end, (jnp.moveaxis(carry_wins, -1, 0), jnp.moveaxis(dm_from_tok, -1, 0)),
      reverse=True)
  return dm0_routed, jnp.moveaxis(dm_end_k, 0, -1)


def log_gate_cotangents(rowsum, colsum, d_log_u, d_log_w_state, d_log_decay):
  """Per chunk, the log-gate cotangents before stabilizer routing, from the pieces:
  row/column sums of d log W [.., L], d log u [.., L], d log w (the state weights) [.., L]
  and d log G [..]. With log W_tj = b_t - b_j + log i_j, log u_t = b_t + m,
  a_t = g - b_t + log i_t, log G = g + m - m': returns (d log i, db, dg)."""
  d_log_i = colsum + d_log_w_state
  db = rowsum - colsum + d_log_u - d_log_w_state
  dg = d_log_w_state.sum(-1) + d_log_decay
  return d_log_i, db, dg


def intra_argmax_cotangent(dm_tok, inter_wins, log_w):
  """Per chunk: token t's stabilizer cotangent sent to column j* = argmax_j log W_tj when
  the intra term won m~_t (first index on ties). log_w [.., L, L]; returns [.., L]."""
  L = log_w.shape[-1]
  onehot_j = jax.nn.one_hot(jnp.argmax(log_w, -1), L, dtype=dm_tok.dtype)
  return (jnp.where(inter_wins, 0.0, dm_tok)[..., None] * onehot_j).sum(-2)


def route_stabilizers(d_log_i, db, dg, dm_tok, to_j, dm_end, carry_wins, a):
  """Per chunk, sends the stabilizer cotangents to the argmax of each max.

  m~_t = max(b_t + m, max_j log W_tj): the carried branch feeds b_t (and m, through
  `stabilizer_cotangents`), the intra branch feeds log W_tj* = b_t - b_j* + log i_j*
  (to_j, from `intra_argmax_cotangent` or a kernel). m' = max(g + m, max_t a_t): the
  carried branch feeds g (and m), otherwise a_t* = g - b_t* + log i_t*.
  """
  L = a.shape[-1]
  to_t = (jnp.where(carry_wins, 0.0, dm_end)[..., None]
          * jax.nn.one_hot(jnp.argmax(a, -1), L, dtype=db.dtype))
  return d_log_i + to_j + to_t, db + dm_tok - to_j - to_t, dg + dm_end


def forget_gate_cotangent(db, dg):
  """d log f_s = sum_{t>=s} db_t + dg, per chunk (last axis)."""
  return jnp.cumsum(db[..., ::-1], axis=-1)[..., ::-1] + dg[..., None]
