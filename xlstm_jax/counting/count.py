"""Exact FLOPs of what a model computes, counted from its jaxpr (no execution, no allocation).

  c = count_flops(fn, *abstract_args)        # FlopCount(matmul, elementwise, transcendental)
  per_token = model_flops(cfg, seq_len)      # one training token of the model as configured

The 6 N rule (counting/flops.py, used for MFU) assumes every parameter does one multiply-add
per token and adds an idealised sequence-mixing term. Scaling-law fits need the cost of the
form that actually runs: the mLSTM's parallel form is quadratic in T, the recurrent form
spends ~6 dqk dv per token and head on its matrix memory, the chunkwise form sits between,
and remat recomputes the forward. So this module walks the jaxpr of the computation:

  dot_general            2 x (output elements) x (contracted size)
  conv_general_dilated   2 x (output elements) x (input features per group) x (kernel taps)
  elementwise arithmetic 1 per output element (add, mul, max, select excluded: see _ARITH)
  reductions, cumsums    1 per input element
  transcendentals        1 per output element, counted apart (exp, log, tanh, logistic, ...)
  scan                   length x its body; cond: the costliest branch; while: an error
                         (its trip count is not static)

Data movement (reshape, transpose, gather, slice, convert, comparisons, selects) is free.
The backward pass is counted as traced by jax.grad, so train = forward + backward exactly
as XLA would receive it (before its own simplifications).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.extend import core as jex_core

from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.nn.lm import LanguageModel

_TRANSCENDENTAL = {"exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "erf", "erfc",
                   "erf_inv", "sin", "cos", "tan", "atan2", "sqrt", "rsqrt", "cbrt", "pow",
                   "lgamma", "digamma", "asinh", "acosh", "atanh", "asin", "acos", "atan",
                   "sinh", "cosh"}
_ARITH = {"add", "add_any", "sub", "mul", "div", "rem", "neg", "max", "min", "abs", "sign",
          "integer_pow", "square", "floor", "ceil", "round", "clamp", "reciprocal"}
_REDUCE = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
           "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp", "reduce_precision"}


@dataclasses.dataclass(frozen=True)
class FlopCount:
  """FLOPs by kind; `total` is their sum."""

  matmul: float = 0.0
  elementwise: float = 0.0
  transcendental: float = 0.0

  @property
  def total(self) -> float:
    return self.matmul + self.elementwise + self.transcendental

  def __add__(self, other: FlopCount) -> FlopCount:
    return FlopCount(self.matmul + other.matmul, self.elementwise + other.elementwise,
                     self.transcendental + other.transcendental)

  def __mul__(self, k: float) -> FlopCount:
    return FlopCount(self.matmul * k, self.elementwise * k, self.transcendental * k)

  def as_dict(self) -> dict[str, float]:
    return {**dataclasses.asdict(self), "total": self.total}


def _size(var) -> int:
  return math.prod(var.aval.shape)


def _eqn_flops(eqn) -> FlopCount:
  name, p = eqn.primitive.name, eqn.params
  if name == "dot_general":
    (contract, _), _ = p["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return FlopCount(matmul=2.0 * _size(eqn.outvars[0]) * math.prod(lhs[d] for d in contract))
  if name == "conv_general_dilated":
    rhs = eqn.invars[1].aval.shape
    spec = p["dimension_numbers"].rhs_spec  # (out feature, in feature, *spatial)
    taps = math.prod(rhs[d] for d in spec[2:])
    return FlopCount(matmul=2.0 * _size(eqn.outvars[0]) * rhs[spec[1]] * taps)
  if name == "scan":
    return jaxpr_flops(p["jaxpr"].jaxpr) * p["length"]
  if name == "pallas_call":   # the kernel body runs once per program of the grid
    return jaxpr_flops(p["jaxpr"]) * math.prod(p["grid_mapping"].grid)
  if name == "cond":
    branches = [jaxpr_flops(b.jaxpr) for b in p["branches"]]
    return max(branches, key=lambda c: c.total)
  if name == "while":
    raise ValueError("a while loop's trip count is not static: its FLOPs cannot be counted "
                     "from the jaxpr (use lax.scan or a static fori_loop)")
  if name in _TRANSCENDENTAL:
    return FlopCount(transcendental=float(_size(eqn.outvars[0])))
  if name in _ARITH:
    return FlopCount(elementwise=float(_size(eqn.outvars[0])))
  if name in _REDUCE:
    return FlopCount(elementwise=float(_size(eqn.invars[0])))
  total = FlopCount()
  for value in p.values():  # pjit, remat, custom_jvp/vjp calls, closed_call, ...
    for sub in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(sub, jex_core.ClosedJaxpr):
        total += jaxpr_flops(sub.jaxpr)
      elif isinstance(sub, jex_core.Jaxpr):
        total += jaxpr_flops(sub)
  return total


def jaxpr_flops(jaxpr) -> FlopCount:
  """The FLOPs of a (open) jaxpr, sub-jaxprs included."""
  total = FlopCount()
  for eqn in jaxpr.eqns:
    total += _eqn_flops(eqn)
  return total


def count_flops(fn, *args, **kwargs) -> FlopCount:
  """FLOPs of `fn(*args, **kwargs)`; args may be arrays or jax.ShapeDtypeStruct."""
  return jaxpr_flops(jax.make_jaxpr(fn)(*args, **kwargs).jaxpr)


def model_flops(cfg: ModelConfig, seq_len: int, train: bool = True,
                batch: int = 1) -> dict[str, float]:
  """FLOPs per token of the model as configured (its backend, chunk size, remat) at context
  `seq_len`: the forward and cross-entropy loss, plus with `train` the gradient (the
  optimizer update, O(N) per step, is not included). {"matmul", "elementwise",
  "transcendental", "total"}."""
  if not isinstance(seq_len, int) or seq_len < 1:
    raise ValueError(f"seq_len={seq_len!r} must be a positive int")
  model = LanguageModel(cfg)
  tokens = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32)
  params = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0),
                                                      jnp.zeros((1, 1), jnp.int32))["params"]))

  def loss(p, t):
    logits = model.apply({"params": p}, t)
    return optax.softmax_cross_entropy_with_integer_labels(logits, t).mean()

  count = count_flops(jax.value_and_grad(loss) if train else loss, params, tokens)
  return (count * (1.0 / (batch * seq_len))).as_dict()
