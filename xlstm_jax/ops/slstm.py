"""The sLSTM cell (scalar memory, memory mixing) and the classic sigmoid LSTM baseline.

Notation: B batch, T time, H heads, D head dim, gates in the order (i, f, z, o).
  x [B, T, 4, H, D]  input pre-activations W x_t
  r [H, D, 4, D]     block-diagonal recurrent matrix: (R h)[b, g, h, e] = sum_d h[b, h, d] r[h, d, g, e]
  b [4, H, D]        bias
  sLSTM state = SLSTMState(c, n, m, h), each [B, H, D]; LSTM state = LSTMState(c, h).
Because h_{t-1} feeds the gates, both cells are sequential. Forms (``backend``):
  recurrent  `lax.scan` over time (the reference)
  pallas     the fused kernel (`pallas_kernels.slstm`): the whole time loop in one kernel,
             Triton on GPU, Mosaic on TPU; on CPU it runs in interpret mode (slow, tests)
  auto       pallas on GPU/TPU, recurrent elsewhere
Gate arithmetic and states are float32 (float64 for float64 inputs).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from xlstm_jax.ops import gates, kernel_registry
from xlstm_jax.ops.checks import expect


class SLSTMState(NamedTuple):
  c: jax.Array  # [B, H, D] cell
  n: jax.Array  # [B, H, D] normalizer
  m: jax.Array  # [B, H, D] stabilizer
  h: jax.Array  # [B, H, D] hidden (fed back through r)


class LSTMState(NamedTuple):
  c: jax.Array  # [B, H, D]
  h: jax.Array  # [B, H, D]


BACKENDS = ("auto", "recurrent", "pallas")


def slstm(x, r, b, *, initial_state: SLSTMState | None = None, return_state: bool = False,
          backend: str = "auto", igate: str = "exp", fgate: str = "sigmoid", normalizer: str = "max",
          stabilize: bool = True, gate_soft_cap: float | None = None):
  """Runs the sLSTM over x [B, T, 4, H, D]. Returns h [B, T, H, D] in x's dtype and, if
  ``return_state``, the final SLSTMState.

  The normalizer state n is a sum of positive gates, so "max" and "abs" both give the
  reference h = sigmoid(o) * c / n; "none" gives h = sigmoid(o) * exp(m) * c. On the first
  step (n == 0) the stabilizer starts at m = log i, as in the reference.
  """
  opts = gates.GateOptions(igate, fgate, normalizer, stabilize, gate_soft_cap)
  _check_inputs(x, r, b)
  state = _initial(initial_state, SLSTMState, x)
  h, state = _run(x, r, b, state, opts, backend)
  return (h, state) if return_state else h


def slstm_step(state: SLSTMState | None, x, r, b, *, igate: str = "exp", fgate: str = "sigmoid",
               normalizer: str = "max", stabilize: bool = True,
               gate_soft_cap: float | None = None):
  """One token: x [B, 4, H, D]; state None is the zero state. Returns (h [B, H, D], state)."""
  opts = gates.GateOptions(igate, fgate, normalizer, stabilize, gate_soft_cap)
  _check_inputs(x[:, None], r, b)
  state = _initial(state, SLSTMState, x[:, None])
  return _step_jit(x, r, b, state, opts=opts)


def lstm(x, r, b, *, initial_state: LSTMState | None = None, return_state: bool = False,
         backend: str = "auto"):
  """The classic LSTM (sigmoid i, f, o; tanh z; h = o * tanh(c)), same layout and backends
  as `slstm`."""
  _check_inputs(x, r, b)
  state = _initial(initial_state, LSTMState, x)
  h, state = _run(x, r, b, state, None, backend)
  return (h, state) if return_state else h


def auto_backend() -> str:
  """What backend="auto" runs: the fused Pallas kernel on GPU/TPU, the scan elsewhere."""
  return "pallas" if jax.default_backend() in ("gpu", "tpu") else "recurrent"


def _run(x, r, b, state, opts, backend):
  """Dispatches to the scan or the kernel; opts None is the classic LSTM."""
  if backend not in BACKENDS:
    raise ValueError(f"backend={backend!r} is not one of {BACKENDS}")
  requested = backend
  if backend == "auto":
    backend = auto_backend()
  if backend == "pallas":
    # The kernel registers itself (kernel_registry imports pallas_kernels.slstm on first
    # request): no import edge from ops to the kernels. auto falls back to the scan when
    # the kernel refuses the shape or cannot be loaded; pallas raises the reason.
    try:
      reason = kernel_registry.unsupported("slstm_fused", T=x.shape[1], D=x.shape[-1],
                                           dtype=x.dtype)
    except LookupError as err:
      reason = str(err)
    if reason is not None:
      if requested == "pallas":
        raise ValueError(f"backend='pallas': {reason}")
      backend = "recurrent"
  if backend == "recurrent":
    return _scan_jit(x, r, b, state, opts=opts)
  slstm_pallas = kernel_registry.get("slstm_fused").fn
  if opts is None:
    zeros = jnp.zeros_like(state.c)
    h, (c, _, _, h_last) = slstm_pallas(x, r, b, (state.c, zeros, zeros, state.h), opts=None)
    return h, LSTMState(c, h_last)
  h, final = slstm_pallas(x, r, b, tuple(state), opts=opts)
  return h, SLSTMState(*final)


def lstm_step(state: LSTMState | None, x, r, b):
  """One token of the classic LSTM: x [B, 4, H, D]; state None is the zero state."""
  _check_inputs(x[:, None], r, b)
  state = _initial(state, LSTMState, x[:, None])
  return _step_jit(x, r, b, state, opts=None)


def _preactivations(x_t, r, b, h_prev):
  """x_t [B, 4, H, D] + R h_{t-1} + b, in the compute dtype; returns the four gates."""
  raw = x_t + jnp.einsum("bhd,hdge->bghe", h_prev, r) + b
  return raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]


def _slstm_cell(state: SLSTMState, x_t, r, b, *, opts: gates.GateOptions):
  h, state = slstm_pointwise(_preactivations(x_t, r, b, state.h), state, opts)
  return h, state


def slstm_pointwise(raw, state: SLSTMState, opts: gates.GateOptions):
  """The sLSTM update after the matmul: raw = (i~, f~, z~, o~) pre-activations (each
  [..., D], compute dtype) and the previous state -> (h, new state). Shared with the
  Pallas kernel (pallas_kernels/slstm), which runs it (and its autodiff) per time step."""
  i_raw, f_raw, z_raw, o_raw = raw
  log_i, log_f = opts.log_gates(i_raw, f_raw)
  m_new = gates.next_stabilizer(log_f + state.m, log_i, opts.stabilize)
  if opts.stabilize:
    # A state with n == 0 is empty: m starts at log i and the forget gate has nothing to
    # scale (exp(log f_s) could overflow here; the double where keeps its gradient finite).
    empty = state.n == 0
    m_new = jnp.where(empty, log_i, m_new)
    f_s = jnp.where(empty, 0.0, jnp.exp(jnp.where(empty, 0.0, log_f + state.m - m_new)))
  else:
    f_s = jnp.exp(log_f + state.m - m_new)
  i_s = jnp.exp(log_i - m_new)
  c = f_s * state.c + i_s * jnp.tanh(z_raw)
  n = f_s * state.n + i_s
  readout = c * jnp.exp(m_new) if opts.normalizer == "none" else c / n
  h = jax.nn.sigmoid(o_raw) * readout
  return h, SLSTMState(c, n, m_new, h)


def _lstm_cell(state: LSTMState, x_t, r, b):
  return lstm_pointwise(_preactivations(x_t, r, b, state.h), state)


def lstm_pointwise(raw, state: LSTMState):
  """The classic LSTM update after the matmul (see `slstm_pointwise`)."""
  i_raw, f_raw, z_raw, o_raw = raw
  c = jax.nn.sigmoid(f_raw) * state.c + jax.nn.sigmoid(i_raw) * jnp.tanh(z_raw)
  h = jax.nn.sigmoid(o_raw) * jnp.tanh(c)
  return h, LSTMState(c, h)


def _cell(opts):
  """The sLSTM cell with these gate options, or the classic LSTM cell for None."""
  return _lstm_cell if opts is None else functools.partial(_slstm_cell, opts=opts)


# The static argument is the (hashable) GateOptions, not a cell function: a new partial
# per call would hash differently and recompile every call.
@functools.partial(jax.jit, static_argnames=("opts",))
def _scan_jit(x, r, b, state, *, opts):
  dtype = _compute_dtype(x)
  r, b, cell = r.astype(dtype), b.astype(dtype), _cell(opts)

  def step(carry, x_t):
    h, carry = cell(carry, x_t.astype(dtype), r, b)
    return carry, h

  state, h = jax.lax.scan(step, state, jnp.moveaxis(x, 1, 0))
  return jnp.moveaxis(h, 0, 1).astype(x.dtype), state


@functools.partial(jax.jit, static_argnames=("opts",))
def _step_jit(x, r, b, state, *, opts):
  dtype = _compute_dtype(x)
  h, state = _cell(opts)(state, x.astype(dtype), r.astype(dtype), b.astype(dtype))
  return h.astype(x.dtype), state


def _compute_dtype(x):
  return jnp.promote_types(x.dtype, jnp.float32)


def _initial(state, state_cls, x):
  """The given state cast to the compute dtype, or zeros; checks its shapes."""
  B, _, _, H, D = x.shape
  dtype = _compute_dtype(x)
  if state is None:
    return state_cls(*(jnp.zeros((B, H, D), dtype) for _ in state_cls._fields))
  if len(state) != len(state_cls._fields):
    raise ValueError(f"state has {len(state)} parts, expected {state_cls._fields}")
  for name, s in zip(state_cls._fields, state):
    if tuple(s.shape) != (B, H, D):
      raise ValueError(f"state.{name}.shape={tuple(s.shape)}, expected {(B, H, D)}")
  return state_cls(*(s.astype(dtype) for s in state))


def _check_inputs(x, r, b):
  """chex checks of the arguments; ValueError names the bad one."""
  for name, a in dict(x=x, r=r, b=b).items():
    expect(chex.assert_type, a, float, message=f"{name}.dtype={a.dtype} must be a floating dtype")
  expect(chex.assert_shape, x, (None, None, 4, None, None),
         message=f"x.shape={x.shape} must be [B, T, 4, H, D] (gates i, f, z, o)")
  expect(chex.assert_axis_dimension_gt, x, 1, 0, message=f"x.shape={x.shape} has T=0 tokens")
  _, _, _, H, D = x.shape
  expect(chex.assert_shape, r, (H, D, 4, D),
         message=f"r.shape={r.shape} must be [H, D, 4, D]={(H, D, 4, D)}")
  expect(chex.assert_shape, b, (4, H, D),
         message=f"b.shape={b.shape} must be [4, H, D]={(4, H, D)}")
