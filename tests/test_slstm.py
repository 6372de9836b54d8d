"""sLSTM and classic LSTM: step = sequence, state passing, gate variants, an independent
numpy loop for the classic cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, count_compiles

from xlstm_jax import ops


def _inputs(seed, B=2, T=15, H=3, D=4, dtype=jnp.float64, gate_scale=2.0):
  rng = np.random.default_rng(seed)
  x = rng.normal(0.0, gate_scale, size=(B, T, 4, H, D))
  r = rng.normal(0.0, 0.5, size=(H, D, 4, D))
  b = rng.normal(0.0, 1.0, size=(4, H, D))
  return tuple(jnp.asarray(a, dtype) for a in (x, r, b))


@pytest.mark.parametrize("cell,step", [(ops.slstm, ops.slstm_step), (ops.lstm, ops.lstm_step)])
def test_step_reproduces_sequence_and_state_passing(x64, cell, step):
  x, r, b = _inputs(0)
  h_all, s_all = cell(x, r, b, return_state=True)
  h1, s1 = cell(x[:, :6], r, b, return_state=True)
  h2, s2 = cell(x[:, 6:], r, b, initial_state=s1, return_state=True)
  assert_close((jnp.concatenate([h1, h2], axis=1), s2), (h_all, s_all), 1e-12, "two calls")
  state, hs = None, []
  for t in range(x.shape[1]):
    h_t, state = step(state, x[:, t], r, b)
    hs.append(h_t)
  assert_close((jnp.stack(hs, axis=1), state), (h_all, s_all), 1e-12, "step")


def _numpy_lstm(x, r, b):
  """The textbook LSTM, written independently in numpy."""
  sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
  B, T, _, H, D = x.shape
  c, h, out = np.zeros((B, H, D)), np.zeros((B, H, D)), []
  for t in range(T):
    raw = x[:, t] + np.einsum("bhd,hdge->bghe", h, r) + b
    c = sig(raw[:, 1]) * c + sig(raw[:, 0]) * np.tanh(raw[:, 2])
    h = sig(raw[:, 3]) * np.tanh(c)
    out.append(h)
  return np.stack(out, axis=1)


def test_classic_lstm_matches_numpy(x64):
  x, r, b = _inputs(1)
  assert_close(ops.lstm(x, r, b), _numpy_lstm(*(np.asarray(a) for a in (x, r, b))), 1e-12)


def _numpy_slstm_no_stabilizer(x, r, b):
  """sLSTM in true (unstabilized) units: h = o * c / n with c, n sums of exp gates."""
  sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
  B, T, _, H, D = x.shape
  c, n, h, out = np.zeros((B, H, D)), np.zeros((B, H, D)), np.zeros((B, H, D)), []
  for t in range(T):
    raw = x[:, t] + np.einsum("bhd,hdge->bghe", h, r) + b
    c = sig(raw[:, 1]) * c + np.exp(raw[:, 0]) * np.tanh(raw[:, 2])
    n = sig(raw[:, 1]) * n + np.exp(raw[:, 0])
    h = sig(raw[:, 3]) * c / n
    out.append(h)
  return np.stack(out, axis=1)


@pytest.mark.parametrize("stabilize", [True, False])
def test_slstm_stabilizer_does_not_change_h(x64, stabilize):
  """The stabilizer only rescales c and n: h equals the unstabilized definition."""
  x, r, b = _inputs(2)
  expected = _numpy_slstm_no_stabilizer(*(np.asarray(a) for a in (x, r, b)))
  assert_close(ops.slstm(x, r, b, stabilize=stabilize), expected, 1e-10)


def test_slstm_sigmoid_input_gate_without_normalizer(x64):
  """igate=sigmoid, normalizer=none: the stabilized cell equals h = o * c_true."""
  x, r, b = _inputs(3)
  sig = jax.nn.sigmoid
  h_prev, c, out = jnp.zeros((2, 3, 4)), jnp.zeros((2, 3, 4)), []
  for t in range(x.shape[1]):
    raw = x[:, t] + jnp.einsum("bhd,hdge->bghe", h_prev, r) + b
    c = sig(raw[:, 1]) * c + sig(raw[:, 0]) * jnp.tanh(raw[:, 2])
    h_prev = sig(raw[:, 3]) * c
    out.append(h_prev)
  got = ops.slstm(x, r, b, igate="sigmoid", normalizer="none")
  assert_close(got, jnp.stack(out, axis=1), 1e-10)


@pytest.mark.parametrize("cap", [None, 15.0])
def test_slstm_extreme_gates_finite(cap):
  """Gate pre-activations up to +-100 in float32: the stabilizer keeps every value and
  every gradient finite."""
  x, r, b = _inputs(4, dtype=jnp.float32, gate_scale=60.0)

  def loss(x, r, b):
    return ops.slstm(x, r, b, gate_soft_cap=cap).sum()

  value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(x, r, b)
  assert np.isfinite(value)
  assert all(bool(jnp.isfinite(g).all()) for g in grads)


def test_bf16_inputs_compute_in_float32():
  x, r, b = _inputs(5, dtype=jnp.float32)
  h32 = ops.slstm(x, r, b)
  h16 = ops.slstm(x.astype(jnp.bfloat16), r.astype(jnp.bfloat16), b.astype(jnp.bfloat16))
  assert h16.dtype == jnp.bfloat16
  assert_close(h16, h32, 3e-2)


@pytest.mark.parametrize("cell", [ops.slstm, ops.lstm])
def test_second_call_does_not_recompile(cell):
  x, r, b = _inputs(6, dtype=jnp.float32)
  first = cell(x, r, b)
  with count_compiles() as compiles:
    second = cell(x, r, b)
  assert not compiles
  np.testing.assert_array_equal(first, second)
  np.testing.assert_allclose(jax.jit(lambda *a: cell(*a))(x, r, b), first, rtol=1e-6, atol=1e-6)
