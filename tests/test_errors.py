"""Bad input gets a ValueError that names the value and what was expected."""

import jax.numpy as jnp
import pytest
from helpers import mlstm_inputs

from xlstm_jax import ops


def _mlstm_args():
  return list(mlstm_inputs(0, 1, 2, 5, 4, 3))


@pytest.mark.parametrize("position,bad,match", [
    (0, jnp.zeros((1, 2, 5)), r"q.shape=\(1, 2, 5\) must be \[B, H, T, Dk\]"),
    (1, jnp.zeros((1, 2, 5, 3)), r"k.shape=\(1, 2, 5, 3\) must equal q.shape"),
    (2, jnp.zeros((1, 2, 6, 3)), r"v.shape=\(1, 2, 6, 3\) must be \[B, H, T, Dv\]"),
    (3, jnp.zeros((1, 2, 4)), r"i.shape=\(1, 2, 4\) must be \[B, H, T\]"),
    (4, jnp.zeros((2, 5)), r"f.shape=\(2, 5\) must be \[B, H, T\]"),
    (0, jnp.zeros((1, 2, 5, 4), jnp.int32), r"q.dtype=int32 must be a floating dtype"),
    (2, jnp.zeros((1, 2, 5, 3), jnp.bfloat16), r"q, k, v dtypes"),
])
def test_mlstm_bad_shapes_and_dtypes(position, bad, match):
  args = _mlstm_args()
  args[position] = bad
  with pytest.raises(ValueError, match=match):
    ops.mlstm(*args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(backend="cuda"), r"backend='cuda' is not one of"),
    (dict(chunk_size=0), r"chunk_size=0 must be a positive int"),
    (dict(igate="relu"), r"igate='relu' is not one of \('exp', 'sigmoid'\)"),
    (dict(fgate="tanh"), r"fgate='tanh' is not one of"),
    (dict(normalizer="l2"), r"normalizer='l2' is not one of"),
    (dict(gate_soft_cap=-1.0), r"gate_soft_cap=-1.0 must be None or > 0"),
    (dict(normalizer="none"), r"normalizer='none' with igate='exp' has an unbounded output"),
    (dict(initial_state=ops.mlstm_zero_state(1, 2, 3, 4)),
     r"state.C.shape=\(1, 2, 3, 4\), expected \(1, 2, 4, 3\)"),
])
def test_mlstm_bad_options(kwargs, match):
  with pytest.raises(ValueError, match=match):
    ops.mlstm(*_mlstm_args(), **kwargs)


def test_mlstm_empty_sequence():
  args = [x[:, :, :0] for x in _mlstm_args()]
  with pytest.raises(ValueError, match=r"has T=0 tokens"):
    ops.mlstm(*args)


def test_mlstm_step_bad_state():
  q, k, v, i, f = (x[:, :, 0] for x in _mlstm_args())
  with pytest.raises(ValueError, match=r"state.C.shape=\(1, 2, 3, 3\), expected \(1, 2, 4, 3\)"):
    ops.mlstm_step(ops.mlstm_zero_state(1, 2, 3, 3), q, k, v, i, f)


def test_slstm_bad_inputs():
  x, r, b = jnp.zeros((2, 3, 4, 2, 5)), jnp.zeros((2, 5, 4, 5)), jnp.zeros((4, 2, 5))
  with pytest.raises(ValueError, match=r"x.shape=\(2, 3, 3, 2, 5\) must be \[B, T, 4, H, D\]"):
    ops.slstm(x[:, :, :3], r, b)
  with pytest.raises(ValueError, match=r"r.shape=\(2, 5, 4, 4\) must be \[H, D, 4, D\]"):
    ops.slstm(x, r[..., :4], b)
  with pytest.raises(ValueError, match=r"b.shape=\(2, 5\) must be \[4, H, D\]"):
    ops.lstm(x, r, b[0])
  with pytest.raises(ValueError, match=r"state.m.shape=\(2, 2, 4\), expected \(2, 2, 5\)"):
    bad = ops.SLSTMState(*(jnp.zeros((2, 2, 5)),) * 2, jnp.zeros((2, 2, 4)), jnp.zeros((2, 2, 5)))
    ops.slstm(x, r, b, initial_state=bad)
  with pytest.raises(ValueError, match=r"normalizer='none' with igate='exp'"):
    ops.slstm_step(None, x[:, 0], r, b, normalizer="none")


def test_mlstm_step_takes_one_token():
  q, k, v, i, f = _mlstm_args()
  with pytest.raises(ValueError, match=r"q.shape=\(1, 2, 5, 4\) must be \[B, H, Dk\] \(one token\)"):
    ops.mlstm_step(ops.mlstm_zero_state(1, 2, 4, 3), q, k, v, i, f)
