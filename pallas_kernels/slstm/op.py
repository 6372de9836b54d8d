"""The fused sLSTM (and classic LSTM) on Pallas kernels: the public op and its custom_vjp.

The kernels (kernels.py) run the whole time loop; this module pads the batch to the
batch block, moves the arrays to the kernels' layout and back, and wires forward and
backward together with `jax.custom_vjp` (jax.grad does not go through pallas_call). The
forward stores every step's (c, n, m, h) for the backward: the same [T, B, H, D] states
autodiff of the lax.scan form keeps, and no [T, D, 4D] arrays.
Reference: the lax.scan form `xlstm_jax.ops.slstm(backend="recurrent")` (`reference`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from pallas_kernels.slstm import kernels
from pallas_kernels.slstm.blocks import BlockSizes
from xlstm_jax.ops import gates
from xlstm_jax.ops.slstm import LSTMState, SLSTMState, lstm, slstm


@dataclasses.dataclass(frozen=True)
class _Config:
  opts: gates.GateOptions | None  # None: the classic LSTM cell
  blocks: BlockSizes
  interpret: object


def slstm_pallas(x, r, b, state0, *, opts: gates.GateOptions | None, blocks: BlockSizes | None = None,
                 interpret=None):
  """x [B, T, 4, H, D] (activation dtype, the matmul input dtype), r [H, D, 4, D],
  b [4, H, D]; state0 = (c, n, m, h), each [B, H, D] in the accumulation dtype (float32,
  or float64 in tests). opts: the sLSTM gate options, or None for the classic LSTM (whose
  n, m stay zero). Returns h [B, T, H, D] in x's dtype and the final (c, n, m, h).

  blocks: None takes the default backend's `BlockSizes`. interpret: None interprets on
  CPU (slow, for tests); True forces it.
  """
  blocks = BlockSizes.default() if blocks is None else blocks
  if interpret is None:
    interpret = jax.default_backend() == "cpu"
  if x.ndim != 5 or x.shape[2] != 4:
    raise ValueError(f"x.shape={x.shape} must be [B, T, 4, H, D]")
  blocks.check(x.shape[1], x.shape[-1], x.dtype)  # shape errors before tracing anything
  return _slstm_pallas(x, r, b, tuple(state0), cfg=_Config(opts, blocks, interpret))


@functools.partial(jax.jit, static_argnames=("cfg",))
def _slstm_pallas(x, r, b, state0, *, cfg):
  B, T, _, H, D = x.shape
  bb = cfg.blocks.batch_block
  Bp = -(-B // bb) * bb
  acc = state0[0].dtype
  pad = lambda a: jnp.pad(a, [(0, Bp - B)] + [(0, 0)] * (a.ndim - 1))  # noqa: E731
  xk = pad(x).transpose(3, 1, 2, 0, 4)                                   # [H, T, 4, Bp, D]
  rk = r.astype(x.dtype).transpose(0, 2, 1, 3)                           # [H, 4, D, D]
  bk = b.astype(acc).transpose(1, 0, 2)[:, :, None, :]                   # [H, 4, 1, D]
  s0 = tuple(pad(s.astype(acc)).transpose(1, 0, 2) for s in state0)      # [H, Bp, D]
  hs, c, n, m = _core(xk, rk, bk, *s0, cfg)
  h = hs[:, :, :B].transpose(2, 1, 0, 3)                                 # [B, T, H, D]
  final = tuple(s[:, :B].transpose(1, 0, 2) for s in (c, n, m, hs[:, -1]))
  return h.astype(x.dtype), final


def _forward(xk, rk, bk, c0, n0, m0, h0, cfg):
  states = kernels.forward(xk, rk, bk, (c0, n0, m0, h0), opts=cfg.opts, blocks=cfg.blocks,
                           interpret=cfg.interpret)
  cs, ns, ms, hs = states
  return (hs, cs[:, -1], ns[:, -1], ms[:, -1]), states


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _core(xk, rk, bk, c0, n0, m0, h0, cfg):
  return _forward(xk, rk, bk, c0, n0, m0, h0, cfg)[0]


def _core_fwd(xk, rk, bk, c0, n0, m0, h0, cfg):
  out, states = _forward(xk, rk, bk, c0, n0, m0, h0, cfg)
  return out, (xk, rk, bk, (c0, n0, m0, h0), states)


def _core_bwd(cfg, res, cotangents):
  """The final h is hs[:, -1], so its cotangent already sits in dhs."""
  xk, rk, bk, state0, states = res
  dhs, dc, dn, dm = cotangents
  d_final = (dc, dn, dm, jnp.zeros_like(dc))
  dx, dr, db, *d_state0 = kernels.backward(
      xk, rk, bk, state0, states, dhs, d_final, opts=cfg.opts, blocks=cfg.blocks,
      interpret=cfg.interpret)
  return (dx, dr.sum(0).astype(rk.dtype), db.sum(0).astype(bk.dtype), *d_state0)


_core.defvjp(_core_fwd, _core_bwd)


def reference(x, r, b, state0, *, opts: gates.GateOptions | None):
  """The lax.scan form on the same arguments: what the kernels equal (returns h and the
  final (c, n, m, h); for the LSTM, n and m are the given ones)."""
  if opts is None:
    c0, n0, m0, h0 = state0
    h, st = lstm(x, r, b, initial_state=LSTMState(c0, h0), return_state=True,
                 backend="recurrent")
    return h, (st.c, n0, m0, st.h)
  h, st = slstm(x, r, b, initial_state=SLSTMState(*state0), return_state=True,
                backend="recurrent", **dataclasses.asdict(opts))
  return h, tuple(st)
