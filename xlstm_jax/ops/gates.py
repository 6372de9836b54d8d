"""Gate, stabilizer and normalizer variants shared by every form of every cell.

All gate arithmetic happens in float32, whatever the activation dtype. The knobs are
plain keyword arguments of the public ops (``igate``, ``fgate``, ``normalizer``,
``stabilize``, ``gate_soft_cap``); `GateOptions` bundles and validates them once so
that the forms can take them as one hashable static argument.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

INPUT_GATES = ("exp", "sigmoid")
FORGET_GATES = ("sigmoid", "exp")
NORMALIZERS = ("max", "abs", "none")
# Log weight of masked (acausal) and padding entries: exp() of it is 0 and it never wins a
# max. Finite on purpose: with jax 0.10.2, grad(jit(f)) of `where(mask, x, -inf).max()`
# after a cumsum returns NaN.
LOG_ZERO = -1e30


@jax.custom_jvp
def row_max(x: jax.Array) -> jax.Array:
  """x.max(-1) for stabilizers, with the derivative of the first maximal entry.

  JAX's own derivative of a max divides by the number of entries equal to the result.
  Where XLA computes x twice, in two fusions that round differently, no entry may equal
  the max, and the gradient is 0 / 0 = NaN: seen with XLA:CPU's
  --xla_backend_optimization_level=0 for the parallel mLSTM with gate_soft_cap (NaN
  gradients of every gate, finite forward). Taking the tangent at the argmax never
  divides. It differs from JAX's only at exact ties (JAX averages the tied tangents).
  """
  return x.max(-1)


@row_max.defjvp
def _row_max_jvp(primals, tangents):
  (x,), (dx,) = primals, tangents
  first = jnp.argmax(x, axis=-1)[..., None]
  return x.max(-1), jnp.take_along_axis(dx, first, axis=-1)[..., 0]


@dataclasses.dataclass(frozen=True)
class GateOptions:
  """Ablation knobs of the exponential-gated cells.

  igate: "exp" (log i = i~, the xLSTM default) or "sigmoid" (log i = log_sigmoid(i~)).
  fgate: "sigmoid" (log f = log_sigmoid(f~), default) or "exp" (log f = f~).
  normalizer: "max" (default, max(|n.q|, exp(-m)) + eps), "abs" (|n.q| + eps) or "none"
    (h is the unnormalised memory readout).
  stabilize: track the stabilizer state m (default). Off, m stays 0 and the gates are
    exponentiated as they are, which overflows for large pre-activations: that is
    the ablation.
  gate_soft_cap: if set, pre-activations are squashed to cap * tanh(x / cap) first.
  """

  igate: str = "exp"
  fgate: str = "sigmoid"
  normalizer: str = "max"
  stabilize: bool = True
  gate_soft_cap: float | None = None

  def __post_init__(self):
    if self.igate not in INPUT_GATES:
      raise ValueError(f"igate={self.igate!r} is not one of {INPUT_GATES}")
    if self.fgate not in FORGET_GATES:
      raise ValueError(f"fgate={self.fgate!r} is not one of {FORGET_GATES}")
    if self.normalizer not in NORMALIZERS:
      raise ValueError(f"normalizer={self.normalizer!r} is not one of {NORMALIZERS}")
    if not isinstance(self.stabilize, bool):
      raise ValueError(f"stabilize={self.stabilize!r} must be a bool")
    if self.gate_soft_cap is not None and not self.gate_soft_cap > 0:
      raise ValueError(f"gate_soft_cap={self.gate_soft_cap!r} must be None or > 0")
    if self.normalizer == "none" and self.igate == "exp":
      # Without a normalizer the readout carries exp(i~) unbounded: no stable form exists.
      raise ValueError(
          "normalizer='none' with igate='exp' has an unbounded output (it grows like "
          "exp(i~)); use igate='sigmoid' or normalizer='max'/'abs'")

  def log_gates(self, i_raw: jax.Array, f_raw: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Maps gate pre-activations to (log i, log f), at least float32."""
    dtype = jnp.promote_types(jnp.result_type(i_raw, f_raw), jnp.float32)
    i_raw = soft_cap(i_raw.astype(dtype), self.gate_soft_cap)
    f_raw = soft_cap(f_raw.astype(dtype), self.gate_soft_cap)
    log_i = i_raw if self.igate == "exp" else jax.nn.log_sigmoid(i_raw)
    log_f = jax.nn.log_sigmoid(f_raw) if self.fgate == "sigmoid" else f_raw
    return log_i, log_f


def soft_cap(x: jax.Array, cap: float | None) -> jax.Array:
  """cap * tanh(x / cap); identity for cap=None."""
  if cap is None:
    return x
  return cap * jnp.tanh(x / cap)


def next_stabilizer(log_f_plus_m: jax.Array, log_i: jax.Array, stabilize: bool) -> jax.Array:
  """m_t = max(log f_t + m_{t-1}, log i_t), or 0 when the stabilizer is off."""
  if not stabilize:
    return jnp.zeros_like(log_i)
  return jnp.maximum(log_f_plus_m, log_i)


def mlstm_denominator(qn: jax.Array, m: jax.Array, normalizer: str, eps: float) -> jax.Array:
  """Denominator of the mLSTM readout h = (C^T q) / denominator.

  qn = n . q' and m are in the stabilized representation (true memory = exp(m) * C), so
  "none" divides by exp(-m) to undo the stabilization.
  """
  if normalizer == "max":
    return jnp.maximum(jnp.abs(qn), jnp.exp(-m)) + eps
  if normalizer == "abs":
    return jnp.abs(qn) + eps
  return jnp.exp(-m)


def mlstm_denominator_grad(qn: jax.Array, m: jax.Array, normalizer: str) -> jax.Array:
  """d(denominator)/d(qn), matching the autodiff of `mlstm_denominator` off ties."""
  if normalizer == "max":
    return jnp.where(jnp.abs(qn) > jnp.exp(-m), jnp.sign(qn), 0.0)
  if normalizer == "abs":
    return jnp.sign(qn)
  return jnp.zeros_like(qn)
