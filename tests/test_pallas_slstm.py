"""The fused Pallas sLSTM kernel equals the lax.scan form: outputs, final state and the
gradients w.r.t. x, r, b and the initial state, for every gate knob and the classic LSTM.

CPU runs the kernel in interpret mode (the GPU configuration: batch block 16, so B=3 is
padded). Each distinct configuration costs seconds of compilation, so the shapes are few
and the tests that can share one compiled kernel (float32, extreme inputs, state passing)
use the same shape.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close

from pallas_kernels.slstm import BlockSizes, reference, slstm_pallas
from xlstm_jax import ops
from xlstm_jax.ops.gates import GateOptions

# (B, T, H, D): T = 1, longer T; head dims 256, 16 (and 64 in F32_SHAPE, 16 in the model);
# the batch is never a multiple of the batch block 16.
SHAPES = [(3, 1, 2, 256), (2, 17, 3, 16)]
F32_SHAPE = (3, 9, 2, 64)


def _inputs(shape, dtype, seed=0, scale=1.0):
  """(x, r, b, initial state) in dtype (state in the accumulation dtype) and loss weights;
  drawn in float64 numpy, so every dtype sees the same values."""
  B, T, H, D = shape
  rng = np.random.default_rng(seed)
  normal = lambda *s: rng.standard_normal(s)  # noqa: E731
  x, r, b = scale * normal(B, T, 4, H, D), normal(H, D, 4, D) / np.sqrt(D), normal(4, H, D)
  # A realistic non-empty initial state: n > 0, h bounded.
  state = (normal(B, H, D), np.exp(normal(B, H, D)), normal(B, H, D),
           0.5 * np.tanh(normal(B, H, D)))
  weights = [normal(B, T, H, D), normal(B, H, D), normal(B, H, D)]
  acc = jnp.promote_types(dtype, jnp.float32)
  args = (jnp.asarray(x, dtype), jnp.asarray(r, dtype), jnp.asarray(b, dtype),
          tuple(jnp.asarray(s, acc) for s in state))
  return args, [jnp.asarray(w, acc) for w in weights]


def _outputs_and_grads(fn, args, weights):
  """(h, final state) and the gradients of a loss touching every output."""
  w_h, w_c, w_n = weights

  def loss(x, r, b, state):
    h, (c, n, m, h_last) = fn(x, r, b, state)
    return ((h.astype(w_h.dtype) * w_h).sum() + (c * w_c).sum() + (n * w_n).sum()
            + (m * w_n).sum() + (h_last * w_c).sum()), (h, (c, n, m, h_last))

  grads, out = jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(*args)
  return out, grads


def _pallas(opts, **kw):
  return lambda x, r, b, s: slstm_pallas(x, r, b, s, opts=opts, **kw)


def _scan(opts):
  return lambda x, r, b, s: reference(x, r, b, s, opts=opts)


def _both(shape, dtype, opts, **kw):
  args, weights = _inputs(shape, dtype, **kw)
  return (_outputs_and_grads(_pallas(opts), args, weights),
          _outputs_and_grads(_scan(opts), args, weights))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_equals_scan_float64(x64, shape):
  got, want = _both(shape, jnp.float64, GateOptions())
  assert got[0][0].dtype == jnp.float64
  assert_close(got, want, 1e-10, "pallas vs scan")


GATE_VARIANTS = [  # every knob, in three runs, and the classic LSTM (None)
    GateOptions(igate="sigmoid", fgate="exp", normalizer="none", gate_soft_cap=15.0),
    GateOptions(normalizer="abs", stabilize=False),
    None,
]


@pytest.mark.parametrize("opts", GATE_VARIANTS, ids=str)
def test_gate_variants_float64(x64, opts):
  got, want = _both((3, 6, 2, 16), jnp.float64, opts)
  assert_close(got, want, 1e-10, f"pallas vs scan, {opts}")


def test_float32_against_float64(x64):
  args, weights = _inputs(F32_SHAPE, jnp.float32)
  got = _outputs_and_grads(_pallas(GateOptions()), args, weights)
  assert got[0][0].dtype == jnp.float32
  args64, _ = _inputs(F32_SHAPE, jnp.float64)
  truth = _outputs_and_grads(_scan(GateOptions()), args64, weights)
  assert_close(got, truth, 1e-4, "pallas float32 vs scan float64")


def test_bfloat16_loosely():
  """bfloat16 activations: the kernel's matmuls take bfloat16 inputs (the scan's take
  float32), so they agree loosely."""
  args, _ = _inputs(F32_SHAPE, jnp.bfloat16)
  h, final = slstm_pallas(*args, opts=GateOptions())
  assert h.dtype == jnp.bfloat16 and final[0].dtype == jnp.float32
  h_ref, final_ref = reference(*args, opts=GateOptions())
  assert_close((h, final), (h_ref, final_ref), 5e-2, "bfloat16")


def test_extreme_preactivations_finite():
  """|x| up to 1e3: outputs and gradients stay finite (the stabilizer at work)."""
  args, weights = _inputs(F32_SHAPE, jnp.float32, scale=300.0)
  assert float(jnp.abs(args[0]).max()) > 1e3 * 0.9
  (h, final), grads = _outputs_and_grads(_pallas(GateOptions()), args, weights)
  for leaf in jax.tree.leaves((h, final, grads)):
    assert np.all(np.isfinite(np.asarray(leaf)))
  h_ref, _ = reference(*args, opts=GateOptions())
  assert_close(h, h_ref, 1e-4, "extreme h")


def test_state_passing_across_calls():
  """Two calls of T steps, the second from the first's final state, equal one scan of 2T."""
  args, _ = _inputs((F32_SHAPE[0], 2 * F32_SHAPE[1], *F32_SHAPE[2:]), jnp.float32)
  x, r, b, state = args
  T = F32_SHAPE[1]
  h1, s1 = slstm_pallas(x[:, :T], r, b, state, opts=GateOptions())
  h2, s2 = slstm_pallas(x[:, T:], r, b, s1, opts=GateOptions())
  h_ref, s_ref = reference(x, r, b, state, opts=GateOptions())
  assert_close((jnp.concatenate([h1, h2], 1), s2), (h_ref, s_ref), 1e-5, "state passing")


def test_ops_dispatch():
  """ops.slstm / ops.lstm route backend="pallas" to the kernel; auto is the scan on CPU;
  an unknown backend is refused."""
  (x, r, b, _), _ = _inputs(F32_SHAPE, jnp.float32)
  assert ops.slstm.__module__ == "xlstm_jax.ops.slstm"
  assert_close(ops.slstm(x, r, b, backend="pallas"), ops.slstm(x, r, b, backend="recurrent"),
               1e-5, "ops.slstm pallas")
  from xlstm_jax.ops.slstm import auto_backend
  assert auto_backend() == "recurrent"
  with pytest.raises(ValueError, match="backend='cuda'"):
    ops.slstm(x, r, b, backend="cuda")


def test_registry_dispatch_refusals(monkeypatch):
  """The dispatcher finds the kernel through the registry; a shape the kernel refuses is a
  ValueError with the kernel's reason for backend="pallas", and auto (made to prefer the
  kernel, as on a GPU) falls back to the scan instead."""
  import importlib  # noqa: PLC0415 (the module: xlstm_jax.ops.slstm is also the function)
  from xlstm_jax.ops import kernel_registry  # noqa: PLC0415
  slstm_module = importlib.import_module("xlstm_jax.ops.slstm")
  assert kernel_registry.get("slstm_fused").fn is slstm_pallas
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 3, 4, 1, 24)), jnp.float32)
  r = jnp.asarray(rng.standard_normal((1, 24, 4, 24)) * 0.1, jnp.float32)
  b = jnp.zeros((4, 1, 24), jnp.float32)
  with pytest.raises(ValueError, match="backend='pallas': head dim D=24"):
    ops.slstm(x, r, b, backend="pallas")
  monkeypatch.setattr(slstm_module, "auto_backend", lambda: "pallas")
  assert_close(ops.slstm(x, r, b, backend="auto"), ops.slstm(x, r, b, backend="recurrent"),
               0.0, "auto falls back to the scan")


def test_block_size_errors():
  with pytest.raises(ValueError, match="head dim D=24"):
    BlockSizes("gpu").check(8, 24, jnp.float32)
  with pytest.raises(ValueError, match="batch_block=12"):
    BlockSizes("gpu", batch_block=12).check(8, 32, jnp.float32)
  with pytest.raises(ValueError, match="batch_block=4"):
    BlockSizes("tpu", batch_block=4).check(8, 128, jnp.float32)
  with pytest.raises(ValueError, match="head dim D=96"):
    BlockSizes("tpu").check(8, 96, jnp.float32)
  with pytest.raises(ValueError, match="VMEM"):
    BlockSizes("tpu").check(100_000, 256, jnp.float32)
  with pytest.raises(ValueError, match="target='cpu'"):
    BlockSizes("cpu")
  args, _ = _inputs((2, 3, 1, 24), jnp.float32)
  with pytest.raises(ValueError, match="D=24"):
    slstm_pallas(*args, opts=GateOptions())


def test_model_pallas_equals_scan():
  """A model with an sLSTM block: same logits and parameter gradients with the kernel."""
  from xlstm_jax.nn import lm
  from xlstm_jax.nn.config import ModelConfig
  cfg = ModelConfig(vocab_size=32, embedding_dim=32, num_blocks=1, slstm_at=(0,),
                    num_heads=2, slstm_num_heads=2, backend="recurrent")
  assert cfg.slstm_form == "recurrent"
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 6), 0, 32)
  results = []
  for backend in ("recurrent", "pallas"):
    c = dataclasses.replace(cfg, slstm_backend=backend)
    model = lm.build_model(c)
    params = lm.init_params(model, jax.random.PRNGKey(0), batch=3, seq_len=6)

    def loss(p, model=model):
      logits = model.apply({"params": p}, tokens)
      return (logits ** 2).mean(), logits

    grads, logits = jax.jit(jax.grad(loss, has_aux=True))(params)
    results.append((logits, grads))
  assert_close(results[1], results[0], 2e-5, "model pallas vs scan")


@pytest.mark.parametrize("target,platform,D", [("gpu", "cuda", 64), ("tpu", "tpu", 128)])
def test_lowers_for_hardware(target, platform, D):
  """Forward and backward lower to Triton (GPU) and Mosaic (TPU) in bf16: every primitive
  in the kernels (the per-step autodiff of the cell included) has a lowering rule and
  every block shape passes the backend's checks. (Compiling and running need hardware.)"""
  from pallas_kernels import compat
  B, T, H = 3, 20, 2
  x = jnp.zeros((B, T, 4, H, D), jnp.bfloat16)
  r = jnp.zeros((H, D, 4, D), jnp.bfloat16)
  b = jnp.zeros((4, H, D))
  state = tuple(jnp.zeros((B, H, D)) for _ in range(4))

  def loss(x, r, b, state):
    h, final = slstm_pallas(x, r, b, state, opts=GateOptions(), blocks=BlockSizes(target),
                            interpret=False)
    return h.astype(jnp.float32).sum() + sum(s.sum() for s in final)

  text = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3))).trace(x, r, b, state).lower(
      lowering_platforms=(platform,)).as_text()
  marker = compat.triton_custom_call_target() if target == "gpu" else "tpu_custom_call"
  assert text.count(marker) == 2, "expected 2 kernels: forward and backward"
