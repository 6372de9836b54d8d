"""Head dims that are not tile multiples (8, 24, 40, 96, ...) run in the Pallas mLSTM op:
it zero-pads q, k, v and the state to whole tiles, which is exact, so outputs and
gradients equal the jnp chunkwise form to float64 roundoff. And backend="auto" never
picks a kernel that refuses a shape. Interpret mode, tiny shapes."""

import importlib

import chex
import jax
import jax.numpy as jnp
import pytest
from helpers import loss_weights, mlstm_inputs, mlstm_outputs_and_grads, realistic_state

from pallas_kernels.mlstm_chunkwise import BlockSizes, mlstm_chunkwise_pallas, reference
from xlstm_jax import ops
from xlstm_jax.ops import gates, kernel_registry
from xlstm_jax.ops.mlstm import resolve_backend


def _direct_args(Dk, Dv, B=1, H=1, T=20, seed=0, dtype=jnp.float64):
  """Arguments of the op itself (log gates, unscaled q) and loss weights."""
  q, k, v, i, f = mlstm_inputs(seed, B, H, T, Dk, Dv, dtype)
  log_i, log_f = gates.GateOptions().log_gates(i, f)
  state = tuple(realistic_state(seed, B, H, Dk, Dv, dtype=dtype))
  return (q, k, v, log_i, log_f, state), loss_weights(seed, B, H, T, Dk, Dv, dtype)


def _value_and_grads(fn, args, weights):
  def loss(*a):
    h, (C, n, m) = fn(*a)
    return sum((x * w).sum() for x, w in zip((h, C, n, m), weights)), (h, (C, n, m))
  (_, out), grads = jax.value_and_grad(loss, argnums=tuple(range(6)), has_aux=True)(*args)
  return out, grads


# (blocks, Dk, Dv, padded (Dk, Dv)): not multiples of a fixed tile, GPU and TPU tiling
# rules (below the smallest GPU tile: test_ops_dispatcher_pads).
CASES = [
    (BlockSizes("gpu", chunk=16, block_dv=64), 40, 72, (64, 128)),
    (BlockSizes("tpu", chunk=8, block_dk=128), 136, 8, (256, 8)),  # TPU: 2 tiles of 128
]


@pytest.mark.parametrize("blocks,Dk,Dv,padded", CASES, ids=str)
def test_padding_is_exact(x64, blocks, Dk, Dv, padded):
  """Outputs, final state and every gradient equal the jnp chunkwise form (float64)."""
  assert blocks.padded_dims(Dk, Dv) == padded
  args, weights = _direct_args(Dk, Dv)
  kernel = _value_and_grads(
      lambda *a: mlstm_chunkwise_pallas(*a, blocks=blocks, interpret=True), args, weights)
  ref = _value_and_grads(lambda *a: reference(*a, chunk=blocks.chunk), args, weights)
  assert kernel[0][0].shape == (1, 1, 20, Dv)
  chex.assert_trees_all_equal_shapes(kernel, ref)
  chex.assert_trees_all_close(kernel, ref, rtol=1e-10, atol=1e-10)


def test_ops_dispatcher_pads(x64):
  """ops.mlstm(backend="pallas") with Dk=24, Dv=8 (refused before padding) equals the
  chunkwise form, gradients w.r.t. the gate pre-activations and the state included."""
  B, H, T, Dk, Dv = 1, 1, 19, 24, 8
  args = (*mlstm_inputs(1, B, H, T, Dk, Dv, jnp.float64),
          realistic_state(1, B, H, Dk, Dv, dtype=jnp.float64))
  weights = loss_weights(1, B, H, T, Dk, Dv, jnp.float64)
  run = lambda backend: mlstm_outputs_and_grads(args, weights, backend=backend,  # noqa: E731
                                                chunk_size=16)
  chex.assert_trees_all_close(run("pallas"), run("chunkwise"), rtol=1e-10, atol=1e-10)


class PaddedOpJitTest(chex.TestCase):
  """The padded op under jit and eagerly (chex variants) gives the same result."""

  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_and_eager_agree(self):
    args, _ = _direct_args(8, 24, T=12, dtype=jnp.float32)
    blocks = BlockSizes("gpu", chunk=16)
    run = self.variant(lambda *a: mlstm_chunkwise_pallas(*a, blocks=blocks, interpret=True))
    h, state = run(*args)
    chex.assert_shape(h, (1, 1, 12, 24))
    chex.assert_type(h, jnp.float32)
    h_ref, state_ref = reference(*args, chunk=16)
    chex.assert_trees_all_close((h, state), (h_ref, tuple(state_ref)), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("platform", ["gpu", "tpu"])
def test_auto_never_picks_a_refusing_kernel(monkeypatch, platform):
  """On an accelerator auto picks the kernel for any head dims (they are padded), and the
  jnp chunkwise form for a chunk the kernel refuses; backend="pallas" raises then."""
  monkeypatch.setattr(jax, "default_backend", lambda: platform)
  bad_chunk = 24 if platform == "gpu" else 12
  for Dk, Dv in ((8, 24), (96, 384), (64, 64)):
    assert resolve_backend("auto", Dk=Dk, Dv=Dv, chunk=16) == "pallas"
    assert resolve_backend("auto", Dk=Dk, Dv=Dv, chunk=bad_chunk) == "chunkwise"
    with pytest.raises(ValueError, match=f"chunk={bad_chunk}: the"):
      resolve_backend("pallas", Dk=Dk, Dv=Dv, chunk=bad_chunk)
  assert resolve_backend("recurrent", Dk=8, Dv=8, chunk=bad_chunk) == "recurrent"


def test_auto_falls_back_when_the_kernel_is_missing(monkeypatch):
  """A kernel that cannot be found is refused with the reason, never picked by auto."""
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  # The module, not the function `ops.mlstm` that shadows its name in the package.
  monkeypatch.setattr(importlib.import_module("xlstm_jax.ops.mlstm"), "KERNEL",
                      "no_such_kernel")
  assert resolve_backend("auto", Dk=64, Dv=64, chunk=None) == "chunkwise"
  with pytest.raises(ValueError, match=r"kernel 'no_such_kernel' is not registered"):
    resolve_backend("pallas", Dk=64, Dv=64, chunk=None)


def test_registry_register_lookup_and_reasons():
  """A stand-in kernel registers, reports its reasons and unregisters; unknown names and
  bad entries get errors that name them."""
  seen = []

  def supports(*, D):
    return None if D % 2 == 0 else f"D={D} must be even"

  kernel_registry.register("stand_in", lambda x: seen.append(x) or x, supports=supports)
  try:
    assert "stand_in" in kernel_registry.registered()
    assert kernel_registry.unsupported("stand_in", D=4) is None
    assert kernel_registry.unsupported("stand_in", D=3) == "D=3 must be even"
    assert kernel_registry.get("stand_in").fn(7) == 7 and seen == [7]
  finally:
    kernel_registry.unregister("stand_in")
  assert "stand_in" not in kernel_registry.registered()
  with pytest.raises(LookupError, match=r"kernel 'stand_in' is not registered"):
    kernel_registry.get("stand_in")
  with pytest.raises(TypeError, match=r"kernel 'bad': fn=3"):
    kernel_registry.register("bad", 3, supports=supports)


def test_registered_kernel_reports_shapes():
  """The mLSTM kernel's own check, through the registry: head dims are fine (padded),
  chunks and block sizes the target refuses are not."""
  assert kernel_registry.unsupported("mlstm_chunkwise", Dk=24, Dv=96, chunk=16) is None
  reason = kernel_registry.unsupported("mlstm_chunkwise", Dk=64, Dv=64, chunk=24)
  assert reason is not None and "chunk=24" in reason
  assert BlockSizes("gpu").padded_dims(384, 8) == (384, 16)
