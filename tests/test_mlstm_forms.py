"""Every form of the mLSTM computes the same function: forward, final state and gradients."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (assert_close, count_compiles, loss_weights, mlstm_inputs,
                     mlstm_outputs_and_grads, realistic_state)

from xlstm_jax import ops
from xlstm_jax.ops import gates
from xlstm_jax.ops.mlstm import CPU_PARALLEL_MAX_T

# (B, H, T, Dk, Dv, chunk_size): T = 1, T below/above/equal to the chunk, Dk != Dv.
SHAPES = [
    (1, 1, 1, 4, 4, 8),
    (2, 2, 37, 8, 8, 8),
    (1, 3, 64, 16, 8, 16),
    (2, 1, 20, 4, 12, 64),
    (1, 2, 33, 8, 4, 32),
]
FORMS = ("parallel", "chunkwise")


def _inputs(shape, dtype, seed=0):
  B, H, T, Dk, Dv, _ = shape
  args = (*mlstm_inputs(seed, B, H, T, Dk, Dv, dtype),
          realistic_state(seed, B, H, Dk, Dv, dtype=dtype))
  return args, loss_weights(seed, B, H, T, Dk, Dv, dtype)


def _run(shape, args, weights, forms=("recurrent", *FORMS), **gate_kwargs):
  return {form: mlstm_outputs_and_grads(args, weights, backend=form, chunk_size=shape[-1],
                                        **gate_kwargs)
          for form in forms}


def _to64(tree):
  return jax.tree.map(lambda x: jnp.asarray(np.asarray(x, np.float64)), tree)


@pytest.mark.parametrize("shape", SHAPES)
def test_forms_agree_float64(x64, shape):
  """In float64 the forms agree to roundoff: the algebra (and the hand-written chunkwise
  backward, initial-state gradients included) is exact."""
  out = _run(shape, *_inputs(shape, jnp.float64))
  for form in FORMS:
    assert_close(out[form], out["recurrent"], 1e-9, f"{form} vs recurrent")


@pytest.mark.parametrize("shape", SHAPES)
def test_forms_agree_float32(x64, shape):
  """Each float32 form against the float64 truth of the same inputs. The recurrent
  form itself is ~1e-5 off the truth on these inputs: that is float32's share."""
  with jax.enable_x64(False):
    args, weights = _inputs(shape, jnp.float32)
    out32 = _run(shape, args, weights)
  truth = _run(shape, _to64(args), _to64(weights), forms=("recurrent",))["recurrent"]
  for form, (outputs, grads) in out32.items():
    assert outputs[0].dtype == jnp.float32
    assert_close(outputs, truth[0], 2e-5, f"{form} outputs")
    assert_close(grads, truth[1], 5e-5, f"{form} grads")


def test_forms_agree_bfloat16(x64):
  """bf16 activations: every form computes in float32 and rounds h to bf16."""
  shape = (2, 2, 37, 16, 8, 16)
  with jax.enable_x64(False):
    args, weights = _inputs(shape, jnp.bfloat16)
    out = _run(shape, args, weights)
  truth = _run(shape, _to64(args), _to64(weights), forms=("recurrent",))["recurrent"]
  for form, (outputs, grads) in out.items():
    assert outputs[0].dtype == jnp.bfloat16 and grads[0].dtype == jnp.bfloat16
    assert_close(outputs, truth[0], 1e-2, f"{form} outputs")
    assert_close(grads, truth[1], 2e-2, f"{form} grads")


GATE_VARIANTS = [
    dict(igate="sigmoid"),
    dict(fgate="exp"),
    dict(normalizer="abs"),
    dict(igate="sigmoid", normalizer="none"),
    dict(stabilize=False),
    dict(igate="sigmoid", fgate="exp", stabilize=False, normalizer="abs"),
    dict(gate_soft_cap=15.0),
]


@pytest.mark.parametrize("gate_kwargs", GATE_VARIANTS, ids=lambda d: str(d))
def test_gate_variants_agree(x64, gate_kwargs):
  shape = (2, 2, 29, 8, 4, 8)
  out = _run(shape, *_inputs(shape, jnp.float64), **gate_kwargs)
  for form in FORMS:
    assert_close(out[form], out["recurrent"], 1e-9, f"{form} vs recurrent")


@pytest.mark.parametrize("cap", [None, 15.0])
@pytest.mark.parametrize("zero_state", [True, False])
def test_extreme_gates_finite_and_equal(x64, cap, zero_state):
  """|i~|, |f~| up to 60, beyond float32's exp range without the stabilizer.

  Such gates make the readout ill-conditioned: the float32 recurrent definition itself
  is ~2e-4 off the float64 truth here, so that is the tolerance. The gradient w.r.t. the
  initial m is tiny (it only acts through eps), so it is compared on the scale of all
  gradients.
  """
  B, H, T, Dk, Dv = 2, 2, 45, 8, 8
  rng = np.random.default_rng(3)
  with jax.enable_x64(False):
    q, k, v, _, _ = mlstm_inputs(3, B, H, T, Dk, Dv, jnp.float32)
    i = jnp.asarray(rng.uniform(-60, 60, (B, H, T)), jnp.float32)
    f = jnp.asarray(rng.uniform(-60, 60, (B, H, T)), jnp.float32)
    state = (ops.mlstm_zero_state(B, H, Dk, Dv) if zero_state
             else realistic_state(3, B, H, Dk, Dv))
    args, weights = (q, k, v, i, f, state), loss_weights(3, B, H, T, Dk, Dv)
    shape = (B, H, T, Dk, Dv, 16)
    out32 = _run(shape, args, weights, gate_soft_cap=cap)
  truth = _run(shape, _to64(args), _to64(weights), forms=("recurrent",),
               gate_soft_cap=cap)["recurrent"]
  grad_scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(truth[1]))
  for form, (outputs, grads) in out32.items():
    assert_close(outputs, truth[0], 3e-4, f"{form} outputs")
    assert_close(grads[:5], truth[1][:5], 3e-4, f"{form} grads")
    assert_close(grads[5], truth[1][5], 3e-5, f"{form} state grads", scale=grad_scale)


@pytest.mark.parametrize("backend", ["recurrent", "parallel", "chunkwise"])
def test_state_passing(x64, backend):
  """T1 tokens then T2 tokens with the carried state equals T1 + T2 at once."""
  q, k, v, i, f = mlstm_inputs(5, 2, 2, 50, 8, 6, jnp.float64)
  state0 = realistic_state(5, 2, 2, 8, 6, dtype=jnp.float64)
  kw = dict(backend=backend, chunk_size=8, return_state=True)
  h_all, s_all = ops.mlstm(q, k, v, i, f, initial_state=state0, **kw)
  first = [x[:, :, :19] for x in (q, k, v, i, f)]
  second = [x[:, :, 19:] for x in (q, k, v, i, f)]
  h1, s1 = ops.mlstm(*first, initial_state=state0, **kw)
  h2, s2 = ops.mlstm(*second, initial_state=s1, **kw)
  assert_close((jnp.concatenate([h1, h2], axis=2), s2), (h_all, s_all), 1e-10, backend)


def test_step_reproduces_sequence(x64):
  q, k, v, i, f = mlstm_inputs(6, 2, 3, 17, 8, 4, jnp.float64)
  state = realistic_state(6, 2, 3, 8, 4, dtype=jnp.float64)
  h_seq, s_seq = ops.mlstm(q, k, v, i, f, initial_state=state, backend="chunkwise",
                           chunk_size=4, return_state=True)
  hs = []
  for t in range(q.shape[2]):
    h_t, state = ops.mlstm_step(state, q[:, :, t], k[:, :, t], v[:, :, t], i[:, :, t],
                                f[:, :, t])
    hs.append(h_t)
  assert_close((jnp.stack(hs, axis=2), state), (h_seq, s_seq), 1e-10, "step")


def test_no_initial_state_is_zero_state():
  q, k, v, i, f = mlstm_inputs(7, 1, 2, 9, 4, 4)
  h0 = ops.mlstm(q, k, v, i, f)
  h1 = ops.mlstm(q, k, v, i, f, initial_state=ops.mlstm_zero_state(1, 2, 4, 4))
  np.testing.assert_array_equal(h0, h1)


@pytest.mark.parametrize("backend", ["recurrent", "parallel", "chunkwise"])
def test_jit_matches_eager_and_compiles_once(backend):
  q, k, v, i, f = mlstm_inputs(8, 1, 2, 21, 8, 8)
  fn = lambda *a: ops.mlstm(*a, backend=backend, chunk_size=8)  # noqa: E731
  with count_compiles() as first:
    eager = fn(q, k, v, i, f)
  assert first, "the first call compiles (else the counter sees nothing)"
  jitted = jax.jit(fn)
  np.testing.assert_allclose(jitted(q, k, v, i, f), eager, rtol=1e-6, atol=1e-6)
  q2 = q + 1.0
  with count_compiles() as again:
    fn(q2, k, v, i, f)  # same shapes, new values: no new compilation
  assert not again
  assert jitted._cache_size() == 1
  jitted(q * 2.0, k, v, i, f)
  assert jitted._cache_size() == 1


def test_auto_backend_on_cpu_is_parallel_for_short_sequences_else_chunkwise():
  for T, form in ((70, "parallel"), (CPU_PARALLEL_MAX_T, "parallel"),
                  (CPU_PARALLEL_MAX_T + 1, "chunkwise")):
    q, k, v, i, f = mlstm_inputs(9, 1, 1, T, 4, 4)
    np.testing.assert_array_equal(ops.mlstm(q, k, v, i, f, backend="auto", chunk_size=16),
                                  ops.mlstm(q, k, v, i, f, backend=form, chunk_size=16))


@pytest.mark.parametrize("backend", ["recurrent", "parallel", "chunkwise"])
def test_unstabilized_overflow_is_loud(backend):
  """Without the stabilizer, exp(i~) overflows float32 for i~ > 88: every form returns
  inf/NaN at that token (never finite garbage), and the stabilized cell stays finite."""
  q, k, v, i, f = mlstm_inputs(10, 1, 2, 24, 4, 4)
  i = i.at[:, :, 5].set(100.0)
  h_plain = ops.mlstm(q, k, v, i, f, backend=backend, chunk_size=8, stabilize=False)
  h_stable = ops.mlstm(q, k, v, i, f, backend=backend, chunk_size=8)
  assert not np.isfinite(np.asarray(h_plain[:, :, 5])).any()
  assert np.isfinite(np.asarray(h_plain[:, :, :5])).all()
  assert np.isfinite(np.asarray(h_stable)).all()


def test_stabilizer_row_max_derivative_is_the_first_maximal_entry():
  x = jnp.array([[1.0, 3.0, 3.0, -2.0], [0.5, -1.0, 0.25, 0.0]])
  np.testing.assert_array_equal(gates.row_max(x), x.max(-1))
  g = jax.grad(lambda x: (gates.row_max(x) * jnp.array([2.0, -1.0])).sum())(x)
  np.testing.assert_array_equal(g, [[0, 2, 0, 0], [-1, 0, 0, 0]])   # the tie goes to the first
  g = jax.jit(jax.vmap(jax.grad(gates.row_max)))(x)
  np.testing.assert_array_equal(g, [[0, 1, 0, 0], [1, 0, 0, 0]])


def soft_cap_gradients():
  """Gradients w.r.t. q, k, v, i, f of the parallel and chunkwise forms with
  gate_soft_cap=15 (the 7B model's setting), as a dict of numpy arrays."""
  q, k, v, i, f = mlstm_inputs(3, 2, 4, 48, 16, 32, i_scale=1.0, f_loc=0.0, f_scale=1.0)
  out = {}
  for form in FORMS:
    def loss(*args, form=form):
      return jnp.sin(ops.mlstm(*args, backend=form, chunk_size=16, gate_soft_cap=15.0)).sum()
    for name, g in zip("qkvif", jax.grad(loss, argnums=(0, 1, 2, 3, 4))(q, k, v, i, f)):
      out[f"{form}/{name}"] = np.asarray(g)
  return out


def test_gradients_stay_finite_where_xla_rounds_the_log_weights_differently(tmp_path):
  """XLA:CPU at --xla_backend_optimization_level=0 computes the parallel form's log weights
  in two fusions that round differently, so JAX's max derivative (which divides by the
  number of entries equal to the max) was 0 / 0: NaN gradients of every gate with
  gate_soft_cap. gates.row_max never divides: the gradients there are this process's."""
  root = pathlib.Path(__file__).resolve().parents[1]
  script = ("import sys, numpy as np; from test_mlstm_forms import soft_cap_gradients; "
            "np.savez(sys.argv[1], **soft_cap_gradients())")
  env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0",
         "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
  subprocess.run([sys.executable, "-c", script, str(tmp_path / "o0.npz")], env=env, cwd=root,
                 check=True, timeout=600)
  at_o0 = np.load(tmp_path / "o0.npz")
  here = soft_cap_gradients()
  assert sorted(at_o0.files) == sorted(here)
  for name, g in here.items():
    assert np.isfinite(at_o0[name]).all(), name
    np.testing.assert_allclose(at_o0[name], g, rtol=1e-4, atol=1e-5 * np.abs(g).max(),
                               err_msg=name)
