"""Chunkwise mLSTM in plain jnp, with a hand-written backward pass.

Shapes: B batch, H heads, K chunks, L chunk length, T = K * L, Dk key/query dim,
Dv value dim. Inputs arrive in the compute dtype (float32), q already scaled by
1/sqrt(Dk), gates already in log space (see `gates.GateOptions.log_gates`).

Forward (ARCHITECTURE.md, "Chunkwise form"):
  1. per chunk: b = cumsum(log f), g = b_L, a_t = sum_{s>t} log f_s + log i_t (a reverse
     cumsum, not g - b_t, to avoid cancellation);
  2. scans over chunks for the stabilizer m_k and the states
     (C_k, n_k) = G_k (C_{k-1}, n_{k-1}) + (sum_t w_t k_t v_t^T, sum_t w_t k_t);
  3. per chunk (`_chunk_outputs`): the inter-chunk term q C_{k-1} plus the intra-chunk
     term (q K^T * W) V, under the joint stabilizer m~_t, which equals the recurrent
     form's m_t exactly.

Backward: the forward stores the K chunk-entry states (not T token states). Cotangents of
the chunk states run through reverse scans; the rest is per chunk
(`_chunk_grads`). The stabilizers are differentiated as autodiff of the recurrent form
would: their value cancels everywhere except through eps in the denominator and through
the returned final state, and those two cotangents go to the argmax of each max
(`mlstm_chunk_algebra`, shared with the Pallas kernels). docs/design.md has the
derivation.

The per-chunk steps run under `lax.map` over groups of chunks, so their L x L temporaries
stay in cache: batched over all chunks at once the time per token doubles once the
arrays outgrow the CPU caches.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from xlstm_jax.ops import gates
from xlstm_jax.ops.mlstm_chunk_algebra import (chunk_decays, chunk_stabilizers,
                                             denominator_cotangents, forget_gate_cotangent,
                                             gate_sums, intra_argmax_cotangent,
                                             log_gate_cotangents, pad_to_chunks,
                                             route_stabilizers, stabilizer_cotangents)

# Chunks per lax.map step: fastest of 4..256 on the 2-core CPU (32 MB L3) at L=64.
_CHUNKS_PER_GROUP = 64


def mlstm_chunkwise(q, k, v, log_i, log_f, state0, *, chunk_size: int, normalizer: str,
                    stabilize: bool, eps: float):
  """q' [B,H,T,Dk], k [B,H,T,Dk], v [B,H,T,Dv], log gates [B,H,T], state0 (C, n, m).

  Returns h [B,H,T,Dv] and the final state. Any T works: the tail is padded with tokens
  whose input gate is zero and forget gate one, which leave the state unchanged.
  """
  B, H, T, _ = q.shape
  L = min(chunk_size, T)
  q, k, v, log_i, log_f = pad_to_chunks(q, k, v, log_i, log_f, L)
  K = q.shape[2] // L
  q, k, v = (x.reshape(B, H, K, L, x.shape[-1]) for x in (q, k, v))
  log_i, log_f = log_i.reshape(B, H, K, L), log_f.reshape(B, H, K, L)
  h, state = _chunkwise_core(q, k, v, log_i, log_f, *state0, normalizer, stabilize, eps)
  return h.reshape(B, H, K * L, -1)[:, :, :T], state


def _map_chunks(fn, *arrays):
  """fn over single chunks ([L, ...] arrays, scalars per chunk) of [B, H, K, ...] inputs."""
  B, H, K = arrays[0].shape[:3]
  flat = [x.reshape(B * H * K, *x.shape[3:]) for x in arrays]
  out = jax.lax.map(lambda xs: fn(*xs), flat, batch_size=min(_CHUNKS_PER_GROUP, B * H * K))
  return jax.tree.map(lambda x: x.reshape(B, H, K, *x.shape[1:]), out)


def intra_log_weights(log_i, log_f):
  """log D_tj = sum_{j<s<=t} log f_s + log i_j for j <= t, else LOG_ZERO: [..., T, T].

  Sums the terms themselves rather than b_t - b_j, so large |log f| cause no
  cancellation; an associative scan, since cumsum lowers to an O(T^2)-per-column
  reduce_window on CPU.
  """
  T = log_f.shape[-1]
  strict = jnp.tril(jnp.ones((T, T), dtype=bool), k=-1)
  terms = jnp.where(strict, log_f[..., :, None], 0.0)
  seg = jax.lax.associative_scan(jnp.add, terms, axis=terms.ndim - 2)
  causal = jnp.tril(jnp.ones((T, T), dtype=bool))
  return jnp.where(causal, seg + log_i[..., None, :], gates.LOG_ZERO)


def _state_scan(decay, keys, key_scale, values, n_scale, C0, n0, reverse=False):
  """The chunk recurrence (C, n)_k = G_k (C, n)_{k-1} + (A_k^T values_k, A_k^T n_scale_k)
  with A = keys * key_scale, from (C0, n0); reversed, it runs from the last chunk down.

  decay [B,H,K], keys [B,H,K,L,Dk], values [B,H,K,L,Dv], scales [B,H,K,L]. Returns the
  states entering each chunk ([B,H,K,...]) and the final ones. One sequential scan that
  forms each chunk's increment in place: materialising all K increments first, or an
  associative scan, costs more memory traffic than the K small steps (measured).
  """
  def step(carry, xs):
    C, n = carry
    G, a, a_scale, vals, n_sc = xs
    a = a * a_scale[..., None]
    C_new = G[..., None, None] * C + jnp.einsum("bhld,bhle->bhde", a, vals)
    n_new = G[..., None] * n + jnp.einsum("bhld,bhl->bhd", a, n_sc)
    return (C_new, n_new), (C, n)

  xs = tuple(jnp.moveaxis(x, 2, 0) for x in (decay, keys, key_scale, values, n_scale))
  (C_last, n_last), (C_in, n_in) = jax.lax.scan(step, (C0, n0), xs, reverse=reverse)
  return jnp.moveaxis(C_in, 0, 2), jnp.moveaxis(n_in, 0, 2), C_last, n_last


def _states(k, v, log_i, log_f, C0, n0, m0, stabilize):
  """The states (C, n, m)_{k-1} entering every chunk, and the final state."""
  _, g, a = gate_sums(log_i, log_f)
  m_prev, m_last = chunk_stabilizers(g, a, m0, stabilize)
  decay, w = chunk_decays(g, a, m_prev, m_last)
  C_prev, n_prev, C_last, n_last = _state_scan(decay, k, w, v, jnp.ones_like(w), C0, n0)
  return (C_prev, n_prev, m_prev), (C_last, n_last, m_last)


def _chunk_outputs(q, k, v, log_i, log_f, C, n, m, *, normalizer, stabilize, eps):
  """One chunk: q, k [L, Dk], v [L, Dv], gates [L], entering state C, n, m.
  Returns h [L, Dv] and the per-token (q.n, denominator, stabilizer m~)."""
  log_w = intra_log_weights(log_i, log_f)
  log_u = jnp.cumsum(log_f) + m                              # inter-chunk log weight
  m_tok = jnp.maximum(log_u, log_w.max(-1)) if stabilize else jnp.zeros_like(log_u)
  s = (q @ k.T) * jnp.exp(log_w - m_tok[:, None])
  u = jnp.exp(log_u - m_tok)
  num = s @ v + u[:, None] * (q @ C)
  qn = s.sum(-1) + u * (q @ n)
  den = gates.mlstm_denominator(qn, m_tok, normalizer, eps)
  return num / den[:, None], qn, den, m_tok


def _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  (C_prev, n_prev, m_prev), final = _states(k, v, log_i, log_f, C0, n0, m0, stabilize)
  fn = functools.partial(_chunk_outputs, normalizer=normalizer, stabilize=stabilize, eps=eps)
  h, qn, den, m_tok = _map_chunks(fn, q, k, v, log_i, log_f, C_prev, n_prev, m_prev)
  return h, final, (C_prev, n_prev, m_prev, *final, h, qn, den, m_tok)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8, 9, 10))
def _chunkwise_core(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  h, final, _ = _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps)
  return h, final


def _core_fwd(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps):
  h, final, saved = _forward(q, k, v, log_i, log_f, C0, n0, m0, normalizer, stabilize, eps)
  return (h, final), (q, k, v, log_i, log_f, saved)


def _core_bwd(normalizer, stabilize, eps, res, cotangents):
  q, k, v, log_i, log_f, saved = res
  C_prev, n_prev, m_prev, C_last, n_last, m_last, h, qn, den, m_tok = saved
  dh, (dC_last, dn_last, dm_last) = cotangents
  b, g, a = gate_sums(log_i, log_f)
  decay, w = chunk_decays(g, a, m_prev, m_last)
  u = jnp.exp(b + m_prev[..., None] - m_tok)

  # Through h = num / den, per token.
  dnum = dh / den[..., None]
  dqn, dm_tok = denominator_cotangents((dh * h).sum(-1), qn, den, m_tok,
                                       normalizer=normalizer, stabilize=stabilize, eps=eps)

  # Reverse scans for the cotangents of the chunk-end states (C_k, n_k, m_k).
  inter_wins = b + m_prev[..., None] >= m_tok          # m~_t came from the carried state
  carry_wins = g + m_prev >= a.max(-1)                 # m_k came from m_{k-1}
  dC_end, dn_end, dC0, dn0 = _state_scan(decay, q, u, dnum, dqn, dC_last, dn_last,
                                         reverse=True)
  dm0_routed, dm_end_k = stabilizer_cotangents(
      dm_tok, inter_wins, carry_wins, (C_last, n_last, m_last), (dC_last, dn_last, dm_last),
      stabilize=stabilize)

  fn = functools.partial(_chunk_grads, stabilize=stabilize)
  dq, dk, dv, d_log_i, d_log_f, dm_value = _map_chunks(
      fn, q, k, v, log_i, log_f, C_prev, n_prev, u, inter_wins, m_tok, dnum, dqn, dm_tok,
      dC_end, dn_end, dm_end_k, w, decay, a, carry_wins)
  # m0 also enters the first chunk's weights (u, G) as a value, not only as a stabilizer.
  dm0 = dm0_routed + dm_value[:, :, 0]
  return dq, dk, dv, d_log_i, d_log_f, dC0, dn0, dm0


def _chunk_grads(q, k, v, log_i, log_f, C, n, u, inter_wins, m_tok, dnum, dqn, dm_tok,
                 dC_end, dn_end, dm_end, w, decay, a, carry_wins, *, stabilize):
  """Gradients of one chunk, given the cotangents of its outputs (dnum, dqn, dm_tok) and
  of the state after it (dC_end, dn_end, dm_end); u, w, decay are the weights the bulk
  backward already computed. Returns dq, dk, dv, dlog i, dlog f and the chunk's direct
  dependence on its entering m (used for m0)."""
  log_w = intra_log_weights(log_i, log_f)
  weights = jnp.exp(log_w - m_tok[:, None])
  s = (q @ k.T) * weights

  # Outputs: num = s V + u (q C), qn = rowsum(s) + u (q . n).
  ds = dnum @ v.T + dqn[:, None]
  d_log_w = ds * s
  dqk = ds * weights
  d_log_u = u * ((dnum * (q @ C)).sum(-1) + dqn * (q @ n))
  dq = dqk @ k + u[:, None] * (dnum @ C.T + dqn[:, None] * n[None, :])
  dk = dqk.T @ q
  dv = s.T @ dnum

  # State after the chunk: (C', n') = G (C, n) + sum_t w_t (k_t v_t^T, k_t).
  v_dC = v @ dC_end.T
  dk = dk + w[:, None] * (v_dC + dn_end[None, :])
  dv = dv + w[:, None] * (k @ dC_end)
  d_log_w_state = w * ((k * v_dC).sum(-1) + k @ dn_end)
  d_log_decay = decay * ((dC_end * C).sum() + dn_end @ n)

  # Log gates, then the stabilizers' cotangents to the argmax of each max
  # (mlstm_chunk_algebra, shared with the Pallas kernels).
  d_log_i, db, dg = log_gate_cotangents(d_log_w.sum(1), d_log_w.sum(0), d_log_u,
                                        d_log_w_state, d_log_decay)
  if stabilize:
    to_j = intra_argmax_cotangent(dm_tok, inter_wins, log_w)
    d_log_i, db, dg = route_stabilizers(d_log_i, db, dg, dm_tok, to_j, dm_end, carry_wins, a)
  d_log_f = forget_gate_cotangent(db, dg)
  return dq, dk, dv, d_log_i, d_log_f, d_log_u.sum() + d_log_decay


_chunkwise_core.defvjp(_core_fwd, _core_bwd)
