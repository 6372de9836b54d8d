"""Per-chunk Pallas kernels: the outputs (forward) and the gradients (backward).

Grid (BH, K): one program per chunk of one sequence, all independent, because the chunk
states (C, n) entering each chunk come from `state_scan` and the stabilizer algebra is
done in jnp beforehand (op.py). Inside, the head dims are walked in (block_dk, block_dv)
tiles so that no program holds more than a few L x L and L x tile arrays.

Notation per chunk: L tokens t (rows) and j (columns); q, k [L, Dk] and v, dh [L, Dv]
in the activation dtype (q *not* scaled: `scale` = 1/sqrt(Dk) is applied in float32);
columns [L, 1] and rows [1, L] are float32 per-token vectors:
  b_hi, b_lo  cumsum of log f inside the chunk, as an unevaluated pair b = b_hi + b_lo
              (columns; op.py `_token_log_weights`)
  row_hi      -b_hi (row)
  row_lo      log i - b_lo (row), so the intra log weight for j <= t is
              log W_tj = (b_hi_t + row_hi_j) + (b_lo_t + row_lo_j)
  log_u       b + m_{k-1}: log weight of the carried state at token t (column)
The reference is `_chunk_outputs` / `_chunk_grads` in xlstm_jax/ops/mlstm_chunkwise.py,
which sums each segment of log f itself. Here the pair keeps log W as accurate: b_t - b_j
in one float would round relative to |b| (~1e3 with extreme forget gates), the hi
difference rounds relative to the segment sum (exactly 0 on the diagonal).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from pallas_kernels import compat
from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes
from xlstm_jax.ops import mlstm_chunk_algebra as algebra

_NT = (((1,), (1,)), ((), ()))  # a @ b.T


def _dot(a, b, acc, mm, trans_b=False):
  """a @ b (or a @ b.T) on activation-dtype inputs, accumulated in `acc`."""
  dims = _NT if trans_b else (((1,), (0,)), ((), ()))
  return jax.lax.dot_general(a.astype(mm), b.astype(mm), dims, preferred_element_type=acc,
                             precision=compat.matmul_precision(mm))


def _log_weights(b_hi, b_lo, row_hi, row_lo):
  """log W [L, L]: b_t - b_j + log i_j on and below the diagonal, LOG_ZERO above. The hi
  parts are subtracted first, so their large common part cancels exactly."""
  L = b_hi.shape[0]
  causal = (jax.lax.broadcasted_iota(jnp.int32, (L, L), 0)
            >= jax.lax.broadcasted_iota(jnp.int32, (L, L), 1))
  return jnp.where(causal, (b_hi + row_hi) + (b_lo + row_lo), algebra.LOG_ZERO)


def _tiles(size, tile):
  return [slice(i, i + tile) for i in range(0, size, tile)]


def _fwd_kernel(q_ref, k_ref, v_ref, b_hi_ref, b_lo_ref, row_hi_ref, row_lo_ref, log_u_ref,
                C_ref, n_ref, h_ref, qn_ref, den_ref, m_ref, *, scale, bk, bv, normalizer,
                stabilize, eps):
  acc, mm = b_hi_ref.dtype, q_ref.dtype
  ks, vs = _tiles(q_ref.shape[1], bk), _tiles(v_ref.shape[1], bv)
  log_w = _log_weights(b_hi_ref[...], b_lo_ref[...], row_hi_ref[...], row_lo_ref[...])
  log_u = log_u_ref[...]
  # The joint stabilizer of the carried and intra terms: the recurrent form's m_t.
  m_tok = (jnp.maximum(log_u, jnp.max(log_w, axis=1, keepdims=True)) if stabilize
           else jnp.zeros_like(log_u))
  u = jnp.exp(log_u - m_tok) * scale
  qk = sum(_dot(q_ref[:, t], k_ref[:, t], acc, mm, trans_b=True) for t in ks)
  q_n = sum(jnp.sum(q_ref[:, t].astype(acc) * n_ref[:, t], axis=1, keepdims=True) for t in ks)
  s = qk * scale * jnp.exp(log_w - m_tok)                               # [L, L]
  qn = jnp.sum(s, axis=1, keepdims=True) + u * q_n
  den = algebra.mlstm_denominator(qn, m_tok, normalizer, eps)
  for tv in vs:
    inter = sum(_dot(q_ref[:, t], C_ref[t, tv], acc, mm) for t in ks)  # [L, bv]
    num = _dot(s, v_ref[:, tv], acc, mm) + u * inter
    h_ref[:, tv] = (num / den).astype(h_ref.dtype)
  qn_ref[...] = qn
  den_ref[...] = den
  m_ref[...] = m_tok


def _bwd_kernel(q_ref, k_ref, v_ref, dh_ref, b_hi_ref, b_lo_ref, row_hi_ref, row_lo_ref,
                log_u_ref, m_ref, inv_den_ref, dqn_ref, w_ref, dm_intra_ref, C_ref, n_ref,
                dC_ref, dn_ref,
                dq_ref, dk_ref, dv_ref, rowsum_ref, colsum_ref, d_log_u_ref, d_state_ref,
                to_j_ref, d_decay_ref, *, scale, bk, bv, stabilize):
  """Cotangents in: of num (dh / den), of qn (dqn), of the chunk's end state (dC, dn).
  Out: dq, dk, dv and the pieces of the log-gate gradient that need L x L or L x D
  arrays: row/column sums of dlog W, dlog u, dlog w (state weights), the stabilizer
  cotangent routed to each column's argmax (to_j) and <dC, C> + <dn, n> (for the decay)."""
  acc, mm = b_hi_ref.dtype, q_ref.dtype
  ks, vs = _tiles(q_ref.shape[1], bk), _tiles(v_ref.shape[1], bv)
  log_w = _log_weights(b_hi_ref[...], b_lo_ref[...], row_hi_ref[...], row_lo_ref[...])
  m_tok, inv_den, dqn, w = m_ref[...], inv_den_ref[...], dqn_ref[...], w_ref[...]
  weights = jnp.exp(log_w - m_tok)
  u = jnp.exp(log_u_ref[...] - m_tok) * scale
  dnum = lambda tv: dh_ref[:, tv].astype(acc) * inv_den  # noqa: E731

  qk = sum(_dot(q_ref[:, t], k_ref[:, t], acc, mm, trans_b=True) for t in ks)
  q_n = sum(jnp.sum(q_ref[:, t].astype(acc) * n_ref[:, t], axis=1, keepdims=True) for t in ks)
  s = qk * scale * weights
  ds = dqn + sum(_dot(dnum(tv), v_ref[:, tv], acc, mm, trans_b=True) for tv in vs)
  d_log_w = ds * s
  dqk = ds * weights * scale

  # One pass over the (C, dC) tiles for everything that needs C, and dC's first pass.
  q_C_dnum = state_dot = jnp.zeros_like(dqn)
  d_decay = jnp.zeros((1, 1), acc)
  for t in ks:
    q_t, k_t, dn_t, n_t = q_ref[:, t], k_ref[:, t], dn_ref[:, t], n_ref[:, t]
    dnum_C, v_dC = 0.0, dn_t                                  # -> [L, bk]
    for tv in vs:
      C_tile, dC_tile, dnum_tv = C_ref[t, tv], dC_ref[t, tv], dnum(tv)
      q_C_dnum += jnp.sum(dnum_tv * _dot(q_t, C_tile, acc, mm), axis=1, keepdims=True)
      dnum_C += _dot(dnum_tv, C_tile, acc, mm, trans_b=True)
      v_dC += _dot(v_ref[:, tv], dC_tile, acc, mm, trans_b=True)
      d_decay += jnp.sum(dC_tile * C_tile, keepdims=True)
    d_decay += jnp.sum(dn_t * n_t, keepdims=True)
    dq_ref[:, t] = (_dot(dqk, k_t, acc, mm) + u * (dnum_C + dqn * n_t)).astype(dq_ref.dtype)
    dk_ref[:, t] = (_dot(dqk.T, q_t, acc, mm) + w * v_dC).astype(dk_ref.dtype)
    state_dot += jnp.sum(k_t.astype(acc) * v_dC, axis=1, keepdims=True)
  d_log_u_ref[...] = u * (q_C_dnum + dqn * q_n)
  for tv in vs:
    k_dC = sum(_dot(k_ref[:, t], dC_ref[t, tv], acc, mm) for t in ks)
    dv_ref[:, tv] = (_dot(s.T, dnum(tv), acc, mm) + w * k_dC).astype(dv_ref.dtype)

  rowsum_ref[...] = jnp.sum(d_log_w, axis=1, keepdims=True)
  colsum_ref[...] = jnp.sum(d_log_w, axis=0, keepdims=True)
  d_state_ref[...] = w * state_dot
  d_decay_ref[...] = d_decay
  if stabilize:
    # Token t's stabilizer came from column j* = argmax_j log W_tj when the intra term
    # won (dm_intra is 0 otherwise): send its cotangent there. First index on ties,
    # as jnp.argmax in the reference.
    L = log_w.shape[0]
    cols = jax.lax.broadcasted_iota(jnp.int32, (L, L), 1)
    is_max = log_w == jnp.max(log_w, axis=1, keepdims=True)
    first = jnp.min(jnp.where(is_max, cols, L), axis=1, keepdims=True)
    to_j_ref[...] = jnp.sum(jnp.where(cols == first, dm_intra_ref[...], 0.0), axis=0,
                            keepdims=True)
  else:
    to_j_ref[...] = jnp.zeros_like(to_j_ref)


def _specs(L, widths, kind):
  """BlockSpecs on grid (bh, c) for [BH, T, width] tensors/columns or [BH, K, 1, L] rows
  (a row block spans its array's last two dims, so Mosaic takes any chunk length)."""
  if kind == "row":
    return [pl.BlockSpec((None, None, 1, L), lambda b, c: (b, c, 0, 0)) for _ in widths]
  return [pl.BlockSpec((None, L, w), lambda b, c: (b, c, 0)) for w in widths]


def _state_specs(Dk, Dv, count):
  """(C [BH, K, Dk, Dv], n [BH, K, 1, Dk]) pairs, one chunk's state per program."""
  return [pl.BlockSpec((None, None, Dk, Dv), lambda b, c: (b, c, 0, 0)),
          pl.BlockSpec((None, None, 1, Dk), lambda b, c: (b, c, 0, 0))] * count


@functools.partial(jax.jit, static_argnames=("scale", "blocks", "normalizer", "stabilize",
                                             "eps", "interpret"))
def chunk_outputs(q, k, v, b_hi, b_lo, row_hi, row_lo, log_u_col, C_in, n_in, *, scale,
                  blocks: BlockSizes, normalizer, stabilize, eps, interpret):
  """q, k [BH, T, Dk], v [BH, T, Dv]; columns b_hi, b_lo, log_u_col [BH, T, 1]; rows
  row_hi, row_lo [BH, K, 1, L]; C_in [BH, K, Dk, Dv], n_in [BH, K, 1, Dk]. Returns
  h [BH, T, Dv] (q's dtype) and the columns (qn, den, m~) [BH, T, 1]."""
  BH, T, Dk = q.shape
  Dv, L, acc = v.shape[-1], blocks.chunk, b_hi.dtype
  bk, bv = blocks.tiles(Dk, Dv)
  col = jax.ShapeDtypeStruct((BH, T, 1), acc)
  kernel = functools.partial(_fwd_kernel, scale=scale, bk=bk, bv=bv, normalizer=normalizer,
                             stabilize=stabilize, eps=eps)
  return pl.pallas_call(
      kernel, grid=(BH, T // L),
      in_specs=(_specs(L, (Dk, Dk, Dv, 1, 1), "tok") + _specs(L, (1, 1), "row")
                + _specs(L, (1,), "tok") + _state_specs(Dk, Dv, 1)),
      out_specs=_specs(L, (Dv, 1, 1, 1), "tok"),
      out_shape=(jax.ShapeDtypeStruct((BH, T, Dv), q.dtype), col, col, col),
      compiler_params=blocks.compiler_params(2), interpret=interpret,
      name="mlstm_chunk_outputs",
  )(q, k, v, b_hi, b_lo, row_hi, row_lo, log_u_col, C_in, n_in)


@functools.partial(jax.jit, static_argnames=("scale", "blocks", "stabilize", "interpret"))
def chunk_grads(q, k, v, dh, b_hi, b_lo, row_hi, row_lo, log_u_col, m_col, inv_den_col,
                dqn_col, w_col, dm_intra_col, C_in, n_in, dC_end, dn_end, *, scale,
                blocks: BlockSizes, stabilize, interpret):
  """Shapes as `chunk_outputs`; dh like v; the other columns [BH, T, 1]; dC_end, dn_end
  like C_in, n_in (cotangent of the state after each chunk). Returns dq, dk, dv (q's
  dtype), the columns (rowsum dlog W, dlog u, dlog w), the rows (colsum dlog W, to_j)
  [BH, K, 1, L] and <dC, C> + <dn, n> [BH, K, 1, 1]."""
  BH, T, Dk = q.shape
  Dv, L, acc = v.shape[-1], blocks.chunk, b_hi.dtype
  K = T // L
  bk, bv = blocks.tiles(Dk, Dv)
  col, row_shape = (jax.ShapeDtypeStruct((BH, T, 1), acc),
                    jax.ShapeDtypeStruct((BH, K, 1, L), acc))
  kernel = functools.partial(_bwd_kernel, scale=scale, bk=bk, bv=bv, stabilize=stabilize)
  return pl.pallas_call(
      kernel, grid=(BH, K),
      in_specs=(_specs(L, (Dk, Dk, Dv, Dv, 1, 1), "tok") + _specs(L, (1, 1), "row")
                + _specs(L, (1,) * 6, "tok") + _state_specs(Dk, Dv, 2)),
      out_specs=(_specs(L, (Dk, Dk, Dv, 1), "tok") + _specs(L, (1,), "row")
                 + _specs(L, (1, 1), "tok") + _specs(L, (1,), "row")
                 + [pl.BlockSpec((None, None, 1, 1), lambda b, c: (b, c, 0, 0))]),
      out_shape=(jax.ShapeDtypeStruct(q.shape, q.dtype), jax.ShapeDtypeStruct(k.shape, q.dtype),
                 jax.ShapeDtypeStruct(v.shape, q.dtype), col, row_shape, col, col, row_shape,
                 jax.ShapeDtypeStruct((BH, K, 1, 1), acc)),
      compiler_params=blocks.compiler_params(2), interpret=interpret,
      name="mlstm_chunk_grads",
  )(q, k, v, dh, b_hi, b_lo, row_hi, row_lo, log_u_col, m_col, inv_den_col, dqn_col, w_col,
    dm_intra_col, C_in, n_in, dC_end, dn_end)
