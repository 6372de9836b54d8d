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

import chex
import jax
import jax.numpy as jnp

from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes
from pallas_kernels.mlstm_chunkwise.chunk_kernels import chunk_grads, chunk_outputs
from pallas_kernels.mlstm_chunkwise.state_scan import state_scan
# The chunk algebra the jnp form runs too: the same stabilizers, decays, key weights and
# cotangent routing. The reference below is the jnp form itself (a pure ops module).
from xlstm_jax.ops import mlstm_chunk_algebra as algebra
from xlstm_jax.ops.mlstm_chunkwise import mlstm_chunkwise


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
  _check_inputs(q, k, v, log_i, log_f, tuple(state0))
  blocks.padded_dims(q.shape[-1], v.shape[-1])  # shape errors before tracing anything
  cfg = _Config(normalizer, stabilize, float(eps), q.shape[-1] ** -0.5, blocks, interpret)
  return _mlstm_pallas(q, k, v, log_i, log_f, tuple(state0), cfg=cfg)


def _check_inputs(q, k, v, log_i, log_f, state0):
  """chex shape/dtype checks; ValueError names the argument (chex's detail chained)."""
  B, H, T, Dk = q.shape if q.ndim == 4 else (None,) * 4
  Dv = v.shape[-1]
  checks = [
      (chex.assert_rank, (q, 4), f"q.shape={q.shape} must be [B, H, T, Dk]"),
      (chex.assert_equal_shape, ([q, k],), f"k.shape={k.shape} must equal q.shape={q.shape}"),
      (chex.assert_shape, (v, (B, H, T, None)), f"v.shape={v.shape} must be [B, H, T, Dv] "
       f"with [B, H, T]={(B, H, T)}"),
      (chex.assert_shape, ([log_i, log_f], (B, H, T)),
       f"log_i.shape={log_i.shape}, log_f.shape={log_f.shape} must be [B, H, T]={(B, H, T)}"),
      (chex.assert_trees_all_equal_dtypes, (q, k, v),
       f"q, k, v dtypes ({q.dtype}, {k.dtype}, {v.dtype}) must match"),
      (chex.assert_type, ([log_i, log_f], float),
       f"log gate dtypes ({log_i.dtype}, {log_f.dtype}) must be floating"),
      (chex.assert_equal, (len(state0), 3), f"state0 has {len(state0)} parts, expected (C, n, m)"),
  ]
  for assertion, args, message in checks:
    try:
      assertion(*args)
    except AssertionError as err:
      raise ValueError(message) from err
  for name, x, shape in zip("Cnm", state0, ((B, H, Dk, Dv), (B, H, Dk), (B, H))):
    try:
      chex.assert_shape(x, shape)
    except AssertionError as err:
      raise ValueError(f"state0.{name}.shape={x.shape}, expected {shape}") from err


def _pad_last(x, size):
  """Zero-pads the last axis of x to `size`."""
  return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, size - x.shape[-1])])


@functools.partial(jax.jit, static_argnames=("cfg",))
def _mlstm_pallas(q, k, v, log_i, log_f, state0, *, cfg):
  B, H, T, Dk = q.shape
  Dv, L = v.shape[-1], cfg.blocks.chunk
  # Head dims up to whole tiles: zero columns of q, k, v, C and n add nothing to q.k, q.n,
  # C or n, so the sliced-back outputs and gradients are exact (cfg.scale is Dk's).
  Dk_p, Dv_p = cfg.blocks.padded_dims(Dk, Dv)
  C0, n0, m0 = state0
  q, k, v = _pad_last(q, Dk_p), _pad_last(k, Dk_p), _pad_last(v, Dv_p)
  C0 = jnp.pad(C0, ((0, 0), (0, 0), (0, Dk_p - Dk), (0, Dv_p - Dv)))
  n0 = _pad_last(n0, Dk_p)
  q, k, v, log_i, log_f = algebra.pad_to_chunks(q, k, v, log_i, log_f, L)
  K = q.shape[2] // L
  flat = lambda x: x.reshape(B * H, *x.shape[2:])  # noqa: E731
  h, (C, n, m) = _core(flat(q), flat(k), flat(v), log_i.reshape(B * H, K, L),
                       log_f.reshape(B * H, K, L), flat(C0), flat(n0), flat(m0), cfg)
  state = (C.reshape(B, H, Dk_p, Dv_p)[..., :Dk, :Dv], n.reshape(B, H, Dk_p)[..., :Dk],
           m.reshape(B, H))
  return h.reshape(B, H, K * L, Dv_p)[:, :, :T, :Dv], state


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
  _, g, a = algebra.gate_sums(log_i, log_f)
  m_prev, m_last = algebra.chunk_stabilizers(g, a, m0, cfg.stabilize)
  decay, w = algebra.chunk_decays(g, a, m_prev, m_last)
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
  _, g, a = algebra.gate_sums(log_i, log_f)
  decay, w = algebra.chunk_decays(g, a, m_prev, m_last)
  intra, log_u = _token_log_weights(log_i, log_f, m_prev)  # as the forward's, bit for bit
  u = jnp.exp(log_u - m_tok)

  # Through h = num / den, per token (h as returned, in the activation dtype).
  dh_dot_h = (dh.astype(den.dtype) * h.astype(den.dtype)).sum(-1).reshape(den.shape)
  dqn, dm_tok = algebra.denominator_cotangents(dh_dot_h, qn, den, m_tok,
                                               normalizer=cfg.normalizer, stabilize=stabilize,
                                               eps=cfg.eps)

  # Cotangents of the chunk end states, one reverse scan (values dh / den).
  dC_end, dn_end, dC0, dn0 = state_scan(
      _col(_per_token(decay, L)), q, _col(u * cfg.scale), dh, _col(1.0 / den), _col(dqn),
      dC_last, dn_last[:, None, :], blocks=cfg.blocks, reverse=True,
      interpret=cfg.interpret)

  # Stabilizer cotangents: through the argmax of every max (as the jnp form).
  inter_wins = log_u >= m_tok
  carry_wins = g + m_prev >= a.max(-1)
  dm0_routed, dm_end_k = algebra.stabilizer_cotangents(
      dm_tok, inter_wins, carry_wins, (C_last, n_last, m_last), (dC_last, dn_last, dm_last),
      stabilize=stabilize)                                          # [BH], [BH, K]

  dq, dk, dv, rowsum, colsum, d_log_u, d_log_w_state, to_j, d_decay = chunk_grads(
      q, k, v, dh, *intra, _col(log_u), _col(m_tok), _col(1.0 / den),
      _col(dqn), _col(w), _col(jnp.where(inter_wins, 0.0, dm_tok)), C_in, n_in, dC_end,
      dn_end, scale=cfg.scale, blocks=cfg.blocks, stabilize=stabilize,
      interpret=cfg.interpret)
  rowsum, colsum, d_log_u, d_log_w_state, to_j = (
      x.reshape(log_u.shape) for x in (rowsum, colsum, d_log_u, d_log_w_state, to_j))
  d_log_decay = decay * d_decay.reshape(decay.shape)

  # Log gates, then the stabilizers' cotangents to the argmax of each max (the kernel
  # routed the intra branch, to_j). The kernels hold b as a pair b_hi + b_lo: that
  # changes the rounding of log W, not its derivatives.
  d_log_i, db, dg = algebra.log_gate_cotangents(rowsum, colsum, d_log_u, d_log_w_state,
                                                d_log_decay)
  if stabilize:
    d_log_i, db, dg = algebra.route_stabilizers(d_log_i, db, dg, dm_tok, to_j, dm_end_k,
                                                carry_wins, a)
  d_log_f = algebra.forget_gate_cotangent(db, dg)
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
