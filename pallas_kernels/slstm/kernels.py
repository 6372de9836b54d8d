"""The fused sLSTM time loop as two Pallas kernels: forward and reverse-time backward.

Kernel layout (op.py transposes to it): H heads, T steps, Bp padded batch, D head dim,
gates (i, f, z, o) on their own axis so that every tile is a plain [rows, D] matrix:
  x   [H, T, 4, Bp, D]  input pre-activations W x_t (activation dtype)
  r   [H, 4, D, D]      recurrent matrix per head and gate: pre_g += h @ r[h, g]
  b   [H, 4, 1, D]      bias (accumulation dtype)
  states c, n, m, h     [H, Bp, D] (initial) and [H, T, Bp, D] (every step's, stored)
The grid is (batch blocks, heads); one program runs all T steps of its block with the
state carried in registers / VMEM, and its head's r loaded once (or re-read from the
on-chip block when it is too big for registers, see BlockSizes.hoist_r).

The pointwise cell is the lax.scan form's own (`ops.slstm.slstm_pointwise`), so the
gate knobs are the same code; the backward differentiates it per step with `jax.vjp`
(traced inside the kernel) and does the matmul parts by hand:
  d h_{t-1} = sum_g d pre_g @ r_g^T,  dr_g += h_{t-1}^T @ d pre_g,  db_g += sum_b d pre_g.
dr and db stay on chip for the whole loop: no [T, D, 4D] temporaries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from pallas_kernels import compat
from pallas_kernels.slstm.blocks import BlockSizes
from xlstm_jax.ops.slstm import LSTMState, SLSTMState, lstm_pointwise, slstm_pointwise


def pointwise(opts, raw, c, n, m, h_prev):
  """(h, c, n, m) after one step from the four pre-activations; opts None is the classic
  LSTM, whose n and m are carried unchanged (zeros)."""
  if opts is None:
    h, st = lstm_pointwise(raw, LSTMState(c, h_prev))
    return h, st.c, n, m
  h, st = slstm_pointwise(raw, SLSTMState(c, n, m, h_prev), opts)
  return h, st.c, st.n, st.m


def _dot(a, b, acc):
  """a @ b accumulated in acc; float32 inputs at full precision (not TF32)."""
  return jax.lax.dot(a, b, preferred_element_type=acc, precision=compat.matmul_precision(a.dtype))


def _preacts(x_ref, t, h_prev, rs, bs, acc, mm):
  """x_t + h_{t-1} @ r_g + b_g for the four gates, in the accumulation dtype."""
  hm = h_prev.astype(mm)
  return [x_ref[t, g].astype(acc) + _dot(hm, rs(g), acc) + bs[g] for g in range(4)]


def _r_loader(r_ref, hoist):
  if hoist:
    rs = [r_ref[g] for g in range(4)]
    return lambda g: rs[g]
  return lambda g: r_ref[g]


def _fwd_kernel(x_ref, r_ref, b_ref, c0_ref, n0_ref, m0_ref, h0_ref,
                c_ref, n_ref, m_ref, h_ref, *, opts, hoist):
  acc, mm = c0_ref.dtype, x_ref.dtype
  rs = _r_loader(r_ref, hoist)
  bs = [b_ref[g].astype(acc) for g in range(4)]

  def body(t, carry):
    c, n, m, h = carry
    raw = _preacts(x_ref, t, h, rs, bs, acc, mm)
    h, c, n, m = pointwise(opts, raw, c, n, m, h)
    c_ref[t], n_ref[t], m_ref[t], h_ref[t] = c, n, m, h
    return c, n, m, h

  init = (c0_ref[...], n0_ref[...], m0_ref[...], h0_ref[...])
  jax.lax.fori_loop(0, x_ref.shape[0], body, init)


def _bwd_kernel(x_ref, r_ref, b_ref, c0_ref, n0_ref, m0_ref, h0_ref,
                cs_ref, ns_ref, ms_ref, hs_ref, dh_ref, dcT_ref, dnT_ref, dmT_ref, dhT_ref,
                dx_ref, dr_ref, db_ref, dc0_ref, dn0_ref, dm0_ref, dh0_ref, *, opts, hoist):
  acc, mm = c0_ref.dtype, x_ref.dtype
  T = x_ref.shape[0]
  rs = _r_loader(r_ref, hoist)
  bs = [b_ref[g].astype(acc) for g in range(4)]
  initial = (c0_ref[...], n0_ref[...], m0_ref[...], h0_ref[...])

  def body(step, carry):
    dc, dn, dm, dh, dr, db = carry
    t = T - 1 - step
    prev = jnp.maximum(t - 1, 0)
    first = t == 0
    c_p, n_p, m_p, h_p = (jnp.where(first, s0, ref[prev]) for s0, ref in
                          zip(initial, (cs_ref, ns_ref, ms_ref, hs_ref)))
    raw = _preacts(x_ref, t, h_p, rs, bs, acc, mm)
    _, vjp = jax.vjp(lambda raw, c, n, m: pointwise(opts, raw, c, n, m, h_p),
                     raw, c_p, n_p, m_p)
    d_raw, dc, dn, dm = vjp((dh_ref[t].astype(acc) + dh, dc, dn, dm))
    hm = h_p.astype(mm).T
    dh = 0.0
    for g in range(4):
      dx_ref[t, g] = d_raw[g].astype(dx_ref.dtype)
      dg = d_raw[g].astype(mm)
      dh = dh + _dot(dg, rs(g).T, acc)
      dr = dr[:g] + (dr[g] + _dot(hm, dg, acc),) + dr[g + 1:]
      db = db[:g] + (db[g] + jnp.sum(d_raw[g], axis=0, keepdims=True),) + db[g + 1:]
    return dc, dn, dm, dh, dr, db

  D = r_ref.shape[-1]
  zeros_r = tuple(jnp.zeros((D, D), acc) for _ in range(4))
  zeros_b = tuple(jnp.zeros((1, D), acc) for _ in range(4))
  init = (dcT_ref[...], dnT_ref[...], dmT_ref[...], dhT_ref[...], zeros_r, zeros_b)
  dc, dn, dm, dh, dr, db = jax.lax.fori_loop(0, T, body, init)
  for g in range(4):
    dr_ref[g] = dr[g]
    db_ref[g] = db[g]
  dc0_ref[...], dn0_ref[...], dm0_ref[...], dh0_ref[...] = dc, dn, dm, dh


def _specs(T, D, bb):
  """BlockSpecs over the (batch block j, head h) grid."""
  seq4 = pl.BlockSpec((None, T, 4, bb, D), lambda j, h: (h, 0, 0, j, 0))
  seq = pl.BlockSpec((None, T, bb, D), lambda j, h: (h, 0, j, 0))
  state = pl.BlockSpec((None, bb, D), lambda j, h: (h, j, 0))
  r = pl.BlockSpec((None, 4, D, D), lambda j, h: (h, 0, 0, 0))
  b = pl.BlockSpec((None, 4, 1, D), lambda j, h: (h, 0, 0, 0))
  return seq4, seq, state, r, b


@functools.partial(jax.jit, static_argnames=("opts", "blocks", "interpret"))
def forward(x, r, b, state0, *, opts, blocks: BlockSizes, interpret):
  """x [H, T, 4, Bp, D], r [H, 4, D, D], b [H, 4, 1, D], state0 4 x [H, Bp, D] (acc
  dtype). Returns the stored states (c, n, m, h), each [H, T, Bp, D] in the acc dtype."""
  H, T, _, Bp, D = x.shape
  bb = blocks.batch_block
  acc = state0[0].dtype
  seq4, seq, state, r_spec, b_spec = _specs(T, D, bb)
  out = jax.ShapeDtypeStruct((H, T, Bp, D), acc)
  return pl.pallas_call(
      functools.partial(_fwd_kernel, opts=opts, hoist=blocks.hoist(D)),
      grid=(Bp // bb, H), in_specs=[seq4, r_spec, b_spec] + [state] * 4,
      out_specs=[seq] * 4, out_shape=[out] * 4, compiler_params=blocks.compiler_params(),
      interpret=interpret, name="slstm_fused_fwd",
  )(x, r, b, *state0)


@functools.partial(jax.jit, static_argnames=("opts", "blocks", "interpret"))
def backward(x, r, b, state0, states, dh, d_final, *, opts, blocks: BlockSizes, interpret):
  """Reverse-time pass. states: the forward's stored (c, n, m, h); dh [H, T, Bp, D] and
  d_final (4 x [H, Bp, D]) the cotangents of the outputs and of the final state.
  Returns dx (x's layout and dtype), dr [nb, H, 4, D, D] and db [nb, H, 4, 1, D] per
  batch block (summed by the caller), and the initial state's cotangents."""
  H, T, _, Bp, D = x.shape
  bb = blocks.batch_block
  nb = Bp // bb
  acc = state0[0].dtype
  seq4, seq, state, r_spec, b_spec = _specs(T, D, bb)
  dr_spec = pl.BlockSpec((None, None, 4, D, D), lambda j, h: (j, h, 0, 0, 0))
  db_spec = pl.BlockSpec((None, None, 4, 1, D), lambda j, h: (j, h, 0, 0, 0))
  st = jax.ShapeDtypeStruct((H, Bp, D), acc)
  out_shape = [jax.ShapeDtypeStruct(x.shape, x.dtype),
               jax.ShapeDtypeStruct((nb, H, 4, D, D), acc),
               jax.ShapeDtypeStruct((nb, H, 4, 1, D), acc)] + [st] * 4
  return pl.pallas_call(
      functools.partial(_bwd_kernel, opts=opts, hoist=blocks.hoist(D)),
      grid=(nb, H), in_specs=[seq4, r_spec, b_spec] + [state] * 4 + [seq] * 5 + [state] * 4,
      out_specs=[seq4, dr_spec, db_spec] + [state] * 4, out_shape=out_shape,
      compiler_params=blocks.compiler_params(), interpret=interpret,
      name="slstm_fused_bwd",
  )(x, r, b, *state0, *states, dh, *d_final)
