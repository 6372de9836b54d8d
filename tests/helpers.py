"""Shared input builders and comparison helpers for the cell tests."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from xlstm_jax import ops


def mlstm_inputs(seed, B=2, H=2, T=37, Dk=8, Dv=8, dtype=jnp.float32, i_scale=3.0,
                 f_loc=3.0, f_scale=3.0):
  """q, k, v [B,H,T,D], gate pre-activations i ~ N(0, i_scale), f ~ N(f_loc, f_scale)."""
  rng = np.random.default_rng(seed)
  q, k = (rng.normal(size=(B, H, T, Dk)) for _ in range(2))
  v = rng.normal(size=(B, H, T, Dv))
  i = rng.normal(0.0, i_scale, size=(B, H, T))
  f = rng.normal(f_loc, f_scale, size=(B, H, T))
  return tuple(jnp.asarray(x, dtype) for x in (q, k, v, i, f))


def realistic_state(seed, B=2, H=2, Dk=8, Dv=8, T=11, dtype=jnp.float32):
  """A state the cell can actually reach: the recurrent form run over a random prefix."""
  q, k, v, i, f = mlstm_inputs(seed + 1000, B, H, T, Dk, Dv, dtype)
  _, state = ops.mlstm(q, k, v, i, f, backend="recurrent", return_state=True)
  return state


def rel_err(a, b, scale=None):
  """max |a - b| / max |b|: error relative to the scale of the reference (or `scale`)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  scale = np.abs(b).max() if scale is None else scale
  return float(np.abs(a - b).max() / max(scale, 1e-30))


def assert_close(actual, expected, rtol, what="", scale=None):
  """Compares two pytrees leaf by leaf with `rel_err`, naming the failing leaf."""
  leaves_a, tree_a = jax.tree.flatten(actual)
  leaves_e, tree_e = jax.tree.flatten(expected)
  assert tree_a == tree_e, f"{what}: structures differ: {tree_a} vs {tree_e}"
  for n, (a, e) in enumerate(zip(leaves_a, leaves_e)):
    assert np.all(np.isfinite(np.asarray(a, np.float64))), f"{what} leaf {n}: not finite"
    err = rel_err(a, e, scale)
    assert err <= rtol, f"{what} leaf {n}: relative error {err:.3g} > {rtol:.3g}"


def mlstm_outputs_and_grads(args, weights, **kwargs):
  """(h, final state) and the gradients w.r.t. q, k, v, i, f and the initial state of a
  loss that touches every output: sum(h w_h) + sum(C w_C) + sum(n w_n) + sum(m w_m)."""
  w_h, w_c, w_n, w_m = weights

  def loss(q, k, v, i, f, state):
    h, s = ops.mlstm(q, k, v, i, f, initial_state=state, return_state=True, **kwargs)
    value = ((h.astype(s.C.dtype) * w_h).sum() + (s.C * w_c).sum() + (s.n * w_n).sum()
             + (s.m * w_m).sum())
    return value, (h, s)

  (_, outputs), grads = jax.value_and_grad(loss, argnums=tuple(range(6)), has_aux=True)(*args)
  return outputs, grads


def loss_weights(seed, B, H, T, Dk, Dv, dtype=jnp.float32):
  rng = np.random.default_rng(seed + 7)
  shapes = ((B, H, T, Dv), (B, H, Dk, Dv), (B, H, Dk), (B, H))
  return tuple(jnp.asarray(rng.normal(size=s), dtype) for s in shapes)


_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
  """Yields a list that collects one entry per XLA compilation inside the block (public
  `jax.monitoring` events): a second call with the same shapes must add none."""
  compiles = []

  def listener(event, duration_secs, **kwargs):
    if event == _COMPILE_EVENT:
      compiles.append(duration_secs)

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield compiles
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
