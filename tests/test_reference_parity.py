"""Parity with the reference definitions: golden values from NX-AI's PyTorch `xlstm`
(mLSTM parallel backend, sLSTM vanilla backend) and `mlstm_kernels` (native chunkwise),
made by tests/fixtures/make_fixtures.py in float64 and stored as float32."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close

from xlstm_jax import ops

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
MLSTM_BACKENDS = ("recurrent", "parallel", "chunkwise")


def _load(name, prefix):
  data = np.load(FIXTURES / name)
  return {key[len(prefix) + 1:]: data[key] for key in data.files if key.startswith(prefix + "_")}


@pytest.mark.parametrize("case", ["par", "ext"])
@pytest.mark.parametrize("backend", MLSTM_BACKENDS)
def test_mlstm_matches_xlstm_parallel_backend(x64, case, backend):
  """`ext` has gate pre-activations uniform in [-30, 30]. Computed here in float64: the
  reference differs from our m_0 = 0 convention only through eps (~3e-9)."""
  ref = _load("mlstm_reference.npz", case)
  args = [jnp.asarray(ref[n], jnp.float64) for n in ("q", "k", "v", "i", "f")]

  def loss(*args):
    h = ops.mlstm(*args, backend=backend, chunk_size=16)
    return (h * ref["w"]).sum(), h

  grads, h = jax.grad(loss, argnums=tuple(range(5)), has_aux=True)(*args)
  assert_close(h, ref["h"], 1e-6, "h")
  assert_close(grads, tuple(ref[n] for n in ("dq", "dk", "dv", "di", "df")), 1e-6, "grads")


@pytest.mark.parametrize("backend", MLSTM_BACKENDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_mlstm_matches_mlstm_kernels_chunkwise_with_states(x64, backend, dtype):
  """Initial state in, final state out, gradients through both (float32: the float32
  runs of the references themselves sit ~2e-5 off these float64 values)."""
  ref = _load("mlstm_reference.npz", "chunk")
  with jax.enable_x64(dtype == jnp.float64):
    args = [jnp.asarray(ref[n], dtype) for n in ("q", "k", "v", "i", "f")]
    state0 = ops.MLSTMState(*(jnp.asarray(ref[n], dtype) for n in ("C0", "n0", "m0")))

    def loss(q, k, v, i, f, state0):
      h, s = ops.mlstm(q, k, v, i, f, initial_state=state0, return_state=True,
                       backend=backend, chunk_size=int(ref["chunk_size"]))
      value = (h * ref["w"]).sum() + (s.C * ref["wc"]).sum() + (s.n * ref["wn"]).sum()
      return value, (h, s)

    grads, (h, state) = jax.grad(loss, argnums=tuple(range(6)), has_aux=True)(*args, state0)
  rtol = 1e-6 if dtype == jnp.float64 else 5e-5
  assert_close((h, *state), (ref["h"], ref["C_last"], ref["n_last"], ref["m_last"]), rtol,
               "outputs")
  expected = (*(ref[n] for n in ("dq", "dk", "dv", "di", "df")),
              ops.MLSTMState(ref["dC0"], ref["dn0"], ref["dm0"]))
  assert_close(grads, expected, rtol, "grads")


@pytest.mark.parametrize("case", ["base", "st"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_slstm_matches_xlstm_vanilla_backend(x64, case, dtype):
  """Forward, final state and gradients (w.r.t. x, r, b and the initial state)."""
  ref = _load("slstm_reference.npz", case)
  with jax.enable_x64(dtype == jnp.float64):
    x, r, b = (jnp.asarray(ref[n], dtype) for n in ("x", "r", "b"))
    state0 = (ops.SLSTMState(*(jnp.asarray(ref[n + "0"], dtype) for n in ("c", "n", "m", "h")))
              if case == "st" else None)

    def loss(x, r, b, state0):
      h, s = ops.slstm(x, r, b, initial_state=state0, return_state=True)
      return (h * ref["w"]).sum(), (h, s)

    grads, (h, state) = jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(x, r, b, state0)
  rtol = 1e-6 if dtype == jnp.float64 else 1e-5
  expected_state = tuple(ref[n + "_last"] for n in ("c", "n", "m", "h"))
  assert_close((h, *state), (ref["h"], *expected_state), rtol, "outputs")
  assert_close(grads[:3], tuple(ref[n] for n in ("dx", "dr", "db")), rtol, "grads")
  if case == "st":
    expected = ops.SLSTMState(*(ref["d" + n + "0"] for n in ("c", "n", "m", "h")))
    assert_close(grads[3], expected, rtol, "state grads")
