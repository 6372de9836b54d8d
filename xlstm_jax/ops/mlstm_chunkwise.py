"""Chunkwise mLSTM in plain jnp, with a hand-written backward pass.

Shapes: B batch, H heads, K chunks, L chunk length, T = K * L, Dk key/query dim,
Dv value dim. Inputs arrive already float32, q already scaled by 1/sqrt(Dk), gates
already in log space (see `gates.GateOptions.log_gates`).

Forward (ARCHITECTURE.md, "Chunkwise form"):
  1. per chunk, in parallel: b = cumsum(log f), g = b_L, a_t = sum_{s>t} log f_s + log i_t
     (a reverse cumsum, not g - b_t, to avoid cancellation), the intra-chunk log
     weights log W_tj = sum_{j<s<=t} log f_s + log i_j;
  2. a cheap sequential scan over chunks for the stabilizer m_k and the states
     (C_k, n_k) = G_k (C_{k-1}, n_{k-1}) + (sum_t w_t k_t v_t^T, sum_t w_t k_t);
  3. per chunk, in parallel: outputs from the inter-chunk term q C_{k-1} and the
     intra-chunk term (q K^T * W) V, under the joint stabilizer m~_t (which equals the
     recurrent form's m_t exactly).

Backward: the states entering each chunk are stored by the forward pass (K states, not
T), the cotangents of the chunk states run through one reverse scan, everything else is
batched over chunks. The stabilizers are differentiated like autodiff of the recurrent
form would: their value cancels everywhere except through eps in the denominator and
through the returned final state, and those two cotangents are routed to the argmax of
each max (see `_stabilizer_routing`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from xlstm_jax.ops import gates



def mlstm_chunkwise(q, k, v, log_i, log_f, state0, *, chunk_size: int, normalizer: str,
                    stabilize: bool, eps: float):
  """q' [B,H,T,Dk], k [B,H,T,Dk], v [B,H,T,Dv], log gates [B,H,T], state0 (C, n, m).

  Returns h [B,H,T,Dv] and the final state, all float32. Any T works: the tail is
  padded with tokens whose input gate is zero and forget gate one, which leave the
  state unchanged.
  """
  B, H, T, Dk = q.shape
  Dv = v.shape[-1]
  L = min(chunk_size, T)
  pad = -T % L
  if pad:
    widths = ((0, 0), (0, 0), (0, pad))
    q, k, v = (jnp.pad(x, widths + ((0, 0),)) for x in (q, k, v))
    log_i = jnp.pad(log_i, widths, constant_values=gates.LOG_ZERO)
    log_f = jnp.pad(log_f, widths)
  K = (T + pad) // L
  q, k, v = (x.reshape(B, H, K, L, x.shape[-1]) for x in (q, k, v))
  log_i, log_f = log_i.reshape(B, H, K, L), log_f.reshape(B, H, K, L)
  h, state = _chunkwise_core(q, k, v, log_i, log_f, *state0, normalizer, stabilize, eps)
  return h.reshape(B, H, K * L, Dv)[:, :, :T], state


def _gate_terms(log_i, log_f):
  """Per-chunk cumulative gates: b, g, a, and the masked intra-chunk log weights."""
  L = log_f.shape[-1]
  b = jnp.cumsum(log_f, axis=-1)
  g = b[..., -1]
  rev = jnp.cumsum(log_f[..., ::-1], axis=-1)[..., ::-1]  # sum_{s>=t}
  a = jnp.concatenate([rev[..., 1:], jnp.zeros_like(rev[..., :1])], axis=-1) + log_i
  causal = jnp.tril(jnp.ones((L, L), dtype=bool))
  # sum_{j<s<=t} log f_s as a cumsum of masked terms: no b_t - b_j cancellation.
  strict = jnp.tril(jnp.ones((L, L), dtype=bool), k=-1)
  seg = jnp.cumsum(jnp.where(strict, log_f[..., :, None], 0.0), axis=-2)
  log_w = jnp.where(causal, seg + log_i[..., None, :], gates.LOG_ZERO)
  return b, g, a, log_w


def _chunk_stabilizers(g, a, m0, stabilize):
  """m_k = max(g_k + m_{k-1}, max_t a_t) per chunk; returns (m_{k-1} per chunk, m_K)."""
  a_max = a.max(-1)
  if not stabilize:
    m_prev = jnp.concatenate([m0[..., None], jnp.zeros_like(g[..., 1:])], axis=-1)
    return m_prev, jnp.zeros_like(m0)

  def step(m, xs):
    g_k, a_k = xs
    return jnp.maximum(g_k + m, a_k), m

  m_last, m_prev = jax.lax.scan(step, m0, (jnp.moveaxis(g, -1, 0), jnp.moveaxis(a_max, -1, 0)))
  return jnp.moveaxis(m_prev, 0, -1), m_last


def _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  b, g, a, log_w = _gate_terms(log_i, log_f)
  m_prev, m_last = _chunk_stabilizers(g, a, m0, stabilize)
  m_next = jnp.concatenate([m_prev[..., 1:], m_last[..., None]], axis=-1)
  decay = jnp.exp(g + m_prev - m_next)                      # G_k        [B,H,K]
  w = jnp.exp(a - m_next[..., None])                         # w_t        [B,H,K,L]
  kw = k * w[..., None]
  dC = jnp.einsum("bhkld,bhkle->bhkde", kw, v)
  dn = kw.sum(-2)

  def step(carry, xs):
    C, n = carry
    G_k, dC_k, dn_k = xs
    return (G_k[..., None, None] * C + dC_k, G_k[..., None] * n + dn_k), (C, n)

  xs = (jnp.moveaxis(decay, -1, 0), jnp.moveaxis(dC, 2, 0), jnp.moveaxis(dn, 2, 0))
  (C_last, n_last), (C_prev, n_prev) = jax.lax.scan(step, (C0, n0), xs)
  C_prev, n_prev = jnp.moveaxis(C_prev, 0, 2), jnp.moveaxis(n_prev, 0, 2)

  log_u = b + m_prev[..., None]                              # inter-chunk log weight
  m_tok = jnp.maximum(log_u, log_w.max(-1)) if stabilize else jnp.zeros_like(b)
  weights = jnp.exp(log_w - m_tok[..., None])
  u = jnp.exp(log_u - m_tok)
  s = jnp.einsum("bhkld,bhkjd->bhklj", q, k) * weights
  num = (jnp.einsum("bhklj,bhkje->bhkle", s, v)
         + u[..., None] * jnp.einsum("bhkld,bhkde->bhkle", q, C_prev))
  qn = s.sum(-1) + u * jnp.einsum("bhkld,bhkd->bhkl", q, n_prev)
  den = gates.mlstm_denominator(qn, m_tok, normalizer, eps)
  h = num / den[..., None]
  saved = (C_prev, n_prev, m_prev, C_last, n_last, m_last, h, qn, den, m_tok)
  return h, (C_last, n_last, m_last), saved


@functools.partial(jax.custom_vjp, nondiff_argnums=(8, 9, 10))
def _chunkwise_core(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  h, state, _ = _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps)
  return h.reshape(*h.shape[:2], -1, h.shape[-1]), state


def _core_fwd(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  h, state, saved = _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps)
  return (h.reshape(*h.shape[:2], -1, h.shape[-1]), state), (q, k, v, log_i, log_f, saved)


def _core_bwd(normalizer, stabilize, eps, res, cotangents):
  q, k, v, log_i, log_f, saved = res
  C_prev, n_prev, m_prev, C_last, n_last, m_last, h, qn, den, m_tok = saved
  dh, (dC_last, dn_last, dm_last) = cotangents
  dh = dh.reshape(h.shape)
  b, g, a, log_w = _gate_terms(log_i, log_f)
  m_next = jnp.concatenate([m_prev[..., 1:], m_last[..., None]], axis=-1)
  decay = jnp.exp(g + m_prev - m_next)
  w = jnp.exp(a - m_next[..., None])
  log_u = b + m_prev[..., None]
  weights = jnp.exp(log_w - m_tok[..., None])
  u = jnp.exp(log_u - m_tok)
  qk = jnp.einsum("bhkld,bhkjd->bhklj", q, k)
  s = qk * weights

  # Through h = num / den.
  dnum = dh / den[..., None]
  dh_dot_h = (dh * h).sum(-1)
  dqn = -dh_dot_h / den * gates.mlstm_denominator_grad(qn, m_tok, normalizer)
  # Direct dependence of h on the stabilizer m~_t: only through eps (derivation in docs).
  dm_tok = (-dh_dot_h * eps / den if stabilize and normalizer != "none"
            else jnp.zeros_like(den))

  # Reverse scan over chunks for the cotangents of the chunk-end states.
  qu = q * u[..., None]
  dC_from_out = jnp.einsum("bhkld,bhkle->bhkde", qu, dnum)
  dn_from_out = jnp.einsum("bhkld,bhkl->bhkd", qu, dqn)
  inter_wins = log_u >= log_w.max(-1)
  carry_wins = g + m_prev >= a.max(-1)
  dm_from_tok = jnp.where(inter_wins, dm_tok, 0.0).sum(-1)

  def step(carry, xs):
    dC, dn, dm = carry
    G_k, dC_k, dn_k, carry_k, dm_k = xs
    new = (G_k[..., None, None] * dC + dC_k, G_k[..., None] * dn + dn_k,
           jnp.where(carry_k, dm, 0.0) + dm_k)
    return new, carry

  dm_end = (dm_last - (dC_last * C_last).sum((-2, -1)) - (dn_last * n_last).sum(-1)
            if stabilize else jnp.zeros_like(dm_last))
  xs = tuple(jnp.moveaxis(x, 2, 0) for x in
             (decay, dC_from_out, dn_from_out, carry_wins, dm_from_tok))
  (dC0, dn0, dm0_routed), (dC_end, dn_end, dm_end_k) = jax.lax.scan(
      step, (dC_last, dn_last, dm_end), xs, reverse=True)
  dC_end, dn_end, dm_end_k = (jnp.moveaxis(x, 0, 2) for x in (dC_end, dn_end, dm_end_k))

  # Intra-chunk term.
  ds = jnp.einsum("bhkle,bhkje->bhklj", dnum, v) + dqn[..., None]
  d_log_w = ds * s
  dqk = ds * weights
  inter_num = jnp.einsum("bhkld,bhkde->bhkle", q, C_prev)
  d_log_u = u * ((dnum * inter_num).sum(-1) + dqn * jnp.einsum("bhkld,bhkd->bhkl", q, n_prev))
  dq = (jnp.einsum("bhklj,bhkjd->bhkld", dqk, k)
        + u[..., None] * (jnp.einsum("bhkle,bhkde->bhkld", dnum, C_prev)
                          + dqn[..., None] * n_prev[..., None, :]))
  dk = jnp.einsum("bhklj,bhkld->bhkjd", dqk, q)
  dv = jnp.einsum("bhklj,bhkle->bhkje", s, dnum)

  # State update (C_k, n_k) = G_k (C_{k-1}, n_{k-1}) + sum_t w_t (k_t v_t^T, k_t).
  v_dC = jnp.einsum("bhkle,bhkde->bhkld", v, dC_end)
  k_dC = jnp.einsum("bhkld,bhkde->bhkle", k, dC_end)
  dk = dk + w[..., None] * (v_dC + dn_end[..., None, :])
  dv = dv + w[..., None] * k_dC
  d_log_w_state = w * ((k * v_dC).sum(-1) + (k * dn_end[..., None, :]).sum(-1))
  d_log_decay = decay * ((dC_end * C_prev).sum((-2, -1)) + (dn_end * n_prev).sum(-1))

  # Log gates: log W_tj = b_t - b_j + log i_j, log u_t = b_t + m_{k-1},
  # a_t = g - b_t + log i_t, log G_k = g + m_{k-1} - m_k.
  d_log_i = d_log_w.sum(-2) + d_log_w_state
  db = d_log_w.sum(-1) - d_log_w.sum(-2) + d_log_u - d_log_w_state
  dg = d_log_w_state.sum(-1) + d_log_decay
  if stabilize:
    d_log_i, db, dg = _stabilizer_routing(
        d_log_i, db, dg, dm_tok, inter_wins, log_w, dm_end_k, carry_wins, a)
  d_log_f = jnp.cumsum(db[..., ::-1], axis=-1)[..., ::-1] + dg[..., None]

  # m0 enters the first chunk's values (u, G) directly, not only as a stabilizer.
  dm0 = dm0_routed + d_log_u[:, :, 0].sum(-1) + d_log_decay[:, :, 0]
  return dq, dk, dv, d_log_i, d_log_f, dC0, dn0, dm0


def _stabilizer_routing(d_log_i, db, dg, dm_tok, inter_wins, log_w, dm_end_k, carry_wins, a):
  """Sends the stabilizer cotangents to the argmax of each max, as autodiff would.

  m~_t = max(b_t + m_{k-1}, max_j log W_tj): the inter branch feeds b_t (and m_{k-1},
  handled by the reverse scan), the intra branch feeds log W_tj* = b_t - b_j* + log i_j*.
  m_k = max(g + m_{k-1}, max_t a_t): the carry branch feeds g (and m_{k-1}), otherwise
  a_t* = g - b_t* + log i_t*.
  """
  L = log_w.shape[-1]
  db = db + dm_tok
  onehot_j = jax.nn.one_hot(jnp.argmax(log_w, -1), L, dtype=db.dtype)
  to_j = (jnp.where(inter_wins, 0.0, dm_tok)[..., None] * onehot_j).sum(-2)
  onehot_t = jax.nn.one_hot(jnp.argmax(a, -1), L, dtype=db.dtype)
  to_t = jnp.where(carry_wins, 0.0, dm_end_k)[..., None] * onehot_t
  return d_log_i + to_j + to_t, db - to_j - to_t, dg + dm_end_k


_chunkwise_core.defvjp(_core_fwd, _core_bwd)
