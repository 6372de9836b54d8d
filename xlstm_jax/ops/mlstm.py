"""The mLSTM cell (matrix memory): every form behind one dispatcher.

Notation: B batch, H heads, T time, Dk query/key dim, Dv value dim.
  q, k  [B, H, T, Dk]    v [B, H, T, Dv]    i, f [B, H, T] gate pre-activations
  state = MLSTMState(C [B, H, Dk, Dv], n [B, H, Dk], m [B, H]), float32, stabilized:
  the true memory is exp(m) * C. "No initial state" is the zero state with m = 0.

Forms (``backend=``), all computing the same h and final state:
  recurrent  lax.scan over tokens; the definition.
  parallel   quadratic in T, stabilized; good for short sequences.
  chunkwise  parallel inside chunks, recurrent across them, hand-written backward;
             linear in T. The default on CPU.
  pallas     the chunkwise form as Pallas kernels (`pallas_kernels.mlstm_chunkwise`): Triton
             on GPU, Mosaic on TPU; on CPU it runs in interpret mode (slow, for tests).
             Found through `kernel_registry` ("mlstm_chunkwise"), imported on first use.
  auto       the fastest form for the platform and length: pallas on GPU/TPU (chunkwise
             wherever the kernel refuses the shape, `resolve_backend`); on CPU parallel
             up to CPU_PARALLEL_MAX_T tokens, chunkwise above.
`mlstm_step` is the one-token recurrent update for generation.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from xlstm_jax.ops import gates, kernel_registry
from xlstm_jax.ops.checks import expect
from xlstm_jax.ops.mlstm_chunkwise import intra_log_weights, mlstm_chunkwise

BACKENDS = ("auto", "recurrent", "parallel", "chunkwise", "pallas")
# On CPU the quadratic parallel form beats the chunkwise one up to this many tokens (cell
# fwd+bwd: 2-4x at T 48-64, 1.3-1.8x at T 128, 0.5-1.0x at T 256; benchmarks/mlstm_forms_cpu.py)
CPU_PARALLEL_MAX_T = 128
KERNEL = "mlstm_chunkwise"  # the registry name of the Pallas kernel (kernel_registry)


class MLSTMState(NamedTuple):
  C: jax.Array  # [B, H, Dk, Dv]
  n: jax.Array  # [B, H, Dk]
  m: jax.Array  # [B, H]


def zero_state(batch: int, heads: int, dk: int, dv: int) -> MLSTMState:
  return MLSTMState(jnp.zeros((batch, heads, dk, dv), jnp.float32),
                    jnp.zeros((batch, heads, dk), jnp.float32),
                    jnp.zeros((batch, heads), jnp.float32))


def mlstm(q, k, v, i, f, *, backend: str = "auto", chunk_size: int | None = None,
          initial_state: MLSTMState | None = None, return_state: bool = False,
          igate: str = "exp", fgate: str = "sigmoid", normalizer: str = "max",
          stabilize: bool = True, gate_soft_cap: float | None = None, eps: float = 1e-6):
  """Runs the mLSTM over a sequence. Returns h [B, H, T, Dv] in q's dtype, and the
  final MLSTMState (float32) if ``return_state``. Gate knobs: see `gates.GateOptions`.
  chunk_size: chunk length of the chunkwise and pallas forms; None takes the form's
  default (64 for chunkwise, the platform's `BlockSizes` for pallas)."""
  opts = gates.GateOptions(igate, fgate, normalizer, stabilize, gate_soft_cap)
  _check_sequence_inputs(q, k, v, i, f)
  B, H, T, Dk = q.shape
  if initial_state is None:
    initial_state = zero_state(B, H, Dk, v.shape[-1])
  _check_state(initial_state, B, H, Dk, v.shape[-1])
  if backend not in BACKENDS:
    raise ValueError(f"backend={backend!r} is not one of {BACKENDS}")
  if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
    raise ValueError(f"chunk_size={chunk_size!r} must be a positive int")
  backend = resolve_backend(backend, Dk=Dk, Dv=v.shape[-1], chunk=chunk_size, T=T)
  h, state = _mlstm_jit(q, k, v, i, f, MLSTMState(*initial_state), backend=backend,
                        chunk_size=chunk_size, opts=opts, eps=float(eps))
  return (h, state) if return_state else h


def auto_backend(T: int | None = None) -> str:
  """What backend="auto" prefers on this platform for T tokens: the Pallas kernels on
  GPU/TPU (`resolve_backend` also checks the kernel takes the shape); elsewhere the
  parallel form up to CPU_PARALLEL_MAX_T tokens and the chunkwise form above it (or when
  T is not given)."""
  if jax.default_backend() in ("gpu", "tpu"):
    return "pallas"
  return "parallel" if T is not None and T <= CPU_PARALLEL_MAX_T else "chunkwise"


def resolve_backend(backend: str, *, Dk: int, Dv: int, chunk: int | None,
                    T: int | None = None) -> str:
  """The form a call of T tokens runs. "auto" takes `auto_backend(T)`, falling back to
  "chunkwise" when the kernel refuses these head dims / chunk; "pallas" raises ValueError
  with the kernel's reason instead."""
  if backend not in ("auto", "pallas"):
    return backend
  if backend == "auto" and (preferred := auto_backend(T)) != "pallas":
    return preferred
  reason = kernel_registry.unsupported(KERNEL, Dk=Dk, Dv=Dv, chunk=chunk)
  if reason is None:
    return "pallas"
  if backend == "pallas":
    raise ValueError(reason)
  return "chunkwise"


@functools.partial(jax.jit, static_argnames=("backend", "chunk_size", "opts", "eps"))
def _mlstm_jit(q, k, v, i, f, state, *, backend, chunk_size, opts, eps):
  if backend == "pallas":
    return _pallas(q, k, v, i, f, state, chunk_size=chunk_size, opts=opts, eps=eps)
  chunk_size = 64 if chunk_size is None else chunk_size
  args = _prepare(q, k, v, i, f, state, opts)
  kw = dict(normalizer=opts.normalizer, stabilize=opts.stabilize, eps=eps)
  if backend == "recurrent":
    h, state = _recurrent(*args, **kw)
  elif backend == "parallel":
    h, state = _parallel(*args, **kw)
  else:
    h, state = mlstm_chunkwise(*args, chunk_size=chunk_size, **kw)
  return h.astype(q.dtype), MLSTMState(*state)


def _pallas(q, k, v, i, f, state, *, chunk_size, opts, eps):
  """The kernels take q, k, v in the activation dtype (their matmul inputs) and q
  unscaled; gates and state go in as for the other forms."""
  dtype = compute_dtype(q.dtype)
  log_i, log_f = opts.log_gates(i.astype(dtype), f.astype(dtype))
  state = MLSTMState(*(x.astype(dtype) for x in state))
  h, state = kernel_registry.get(KERNEL).fn(q, k, v, log_i, log_f, state, chunk=chunk_size,
                                            normalizer=opts.normalizer,
                                            stabilize=opts.stabilize, eps=eps)
  return h, MLSTMState(*state)


def mlstm_step(state: MLSTMState, q, k, v, i, f, *, igate: str = "exp",
               fgate: str = "sigmoid", normalizer: str = "max", stabilize: bool = True,
               gate_soft_cap: float | None = None, eps: float = 1e-6):
  """One token: q, k [B, H, Dk], v [B, H, Dv], i, f [B, H]. Returns (h [B, H, Dv], state).

  Memory and cost do not depend on how many tokens came before: this is generation.
  """
  opts = gates.GateOptions(igate, fgate, normalizer, stabilize, gate_soft_cap)
  if q.ndim != 3:
    raise ValueError(f"q.shape={q.shape} must be [B, H, Dk] (one token)")
  _check_sequence_inputs(*(x[:, :, None] for x in (q, k, v, i, f)))
  _check_state(state, *q.shape[:2], q.shape[-1], v.shape[-1])
  return _step_jit(MLSTMState(*state), q, k, v, i, f, opts=opts, eps=float(eps))


@functools.partial(jax.jit, static_argnames=("opts", "eps"))
def _step_jit(state, q, k, v, i, f, *, opts, eps):
  q_s, k, v, log_i, log_f, state = _prepare(q, k, v, i, f, state, opts)
  h, state = _step_math(state, q_s, k, v, log_i, log_f, normalizer=opts.normalizer,
                        stabilize=opts.stabilize, eps=eps)
  return h.astype(q.dtype), state


def _prepare(q, k, v, i, f, state, opts):
  """Casts to the compute dtype, scales q by 1/sqrt(Dk), maps the gates to log space."""
  dtype = compute_dtype(q.dtype)
  log_i, log_f = opts.log_gates(i.astype(dtype), f.astype(dtype))
  q_s = q.astype(dtype) * q.shape[-1] ** -0.5
  state = MLSTMState(*(x.astype(dtype) for x in state))
  return q_s, k.astype(dtype), v.astype(dtype), log_i, log_f, state


def compute_dtype(dtype) -> jnp.dtype:
  """float32 for float32 and narrower activations; float64 stays float64 (for tests)."""
  return jnp.promote_types(dtype, jnp.float32)


def _step_math(state, q, k, v, log_i, log_f, *, normalizer, stabilize, eps):
  """The recurrent update on float32, pre-scaled q and log gates."""
  C, n, m = state
  m_new = gates.next_stabilizer(log_f + m, log_i, stabilize)
  f_s = jnp.exp(log_f + m - m_new)
  i_s = jnp.exp(log_i - m_new)
  C = f_s[..., None, None] * C + i_s[..., None, None] * (k[..., :, None] * v[..., None, :])
  n = f_s[..., None] * n + i_s[..., None] * k
  num = jnp.einsum("bhd,bhde->bhe", q, C)
  den = gates.mlstm_denominator(jnp.einsum("bhd,bhd->bh", q, n), m_new, normalizer, eps)
  return num / den[..., None], MLSTMState(C, n, m_new)


def _recurrent(q, k, v, log_i, log_f, state, **kw):
  def step(carry, xs):
    h, carry = _step_math(carry, *xs, **kw)
    return carry, h

  xs = tuple(jnp.moveaxis(x, 2, 0) for x in (q, k, v, log_i, log_f))
  state, h = jax.lax.scan(step, state, xs)
  return jnp.moveaxis(h, 0, 2), state


def _parallel(q, k, v, log_i, log_f, state, *, normalizer, stabilize, eps):
  """Quadratic form: h_t = sum_j (q_t . k_j) D_tj v_j plus the initial state's share."""
  C0, n0, m0 = state
  log_d = intra_log_weights(log_i, log_f)                 # [B, H, T, T]
  log_init = jnp.cumsum(log_f, axis=-1) + m0[..., None]
  m = jnp.maximum(log_init, gates.row_max(log_d)) if stabilize else jnp.zeros_like(log_init)
  d = jnp.exp(log_d - m[..., None])
  u = jnp.exp(log_init - m)
  s = jnp.einsum("bhtd,bhjd->bhtj", q, k) * d
  num = s @ v + u[..., None] * jnp.einsum("bhtd,bhde->bhte", q, C0)
  qn = s.sum(-1) + u * jnp.einsum("bhtd,bhd->bht", q, n0)
  h = num / gates.mlstm_denominator(qn, m, normalizer, eps)[..., None]
  last = d[:, :, -1]  # the last row's weights build the final state
  C = jnp.einsum("bhj,bhjd,bhje->bhde", last, k, v) + u[:, :, -1, None, None] * C0
  n = jnp.einsum("bhj,bhjd->bhd", last, k) + u[:, :, -1, None] * n0
  return h, MLSTMState(C, n, m[:, :, -1])


def _check_sequence_inputs(q, k, v, i, f):
  """chex checks of the sequence arguments; ValueError names the bad one."""
  for name, x in dict(q=q, k=k, v=v, i=i, f=f).items():
    expect(chex.assert_type, x, float, message=f"{name}.dtype={x.dtype} must be a floating dtype")
  expect(chex.assert_rank, q, 4, message=f"q.shape={q.shape} must be [B, H, T, Dk]")
  expect(chex.assert_equal_shape, [q, k], message=f"k.shape={k.shape} must equal q.shape={q.shape}")
  expect(chex.assert_shape, v, (*q.shape[:3], None),
         message=f"v.shape={v.shape} must be [B, H, T, Dv] with [B, H, T]={q.shape[:3]}")
  for name, x in dict(i=i, f=f).items():
    expect(chex.assert_shape, x, q.shape[:3],
           message=f"{name}.shape={x.shape} must be [B, H, T]={q.shape[:3]}")
  expect(chex.assert_trees_all_equal_dtypes, q, k, v,
         message=f"q, k, v dtypes ({q.dtype}, {k.dtype}, {v.dtype}) must match")
  expect(chex.assert_axis_dimension_gt, q, 2, 0, message=f"q.shape={q.shape} has T=0 tokens")


def _check_state(state, B, H, Dk, Dv):
  if len(state) != 3:
    raise ValueError(f"initial state has {len(state)} parts, expected (C, n, m)")
  expected = MLSTMState((B, H, Dk, Dv), (B, H, Dk), (B, H))
  for name, x, shape in zip(MLSTMState._fields, state, expected):
    expect(chex.assert_shape, x, shape,
           message=f"state.{name}.shape={tuple(x.shape)}, expected {shape}")
