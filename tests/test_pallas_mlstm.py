"""The Pallas chunkwise mLSTM kernels equal the jnp forms: outputs, final state and the
gradients w.r.t. every input and the initial state.

CPU runs the kernels in interpret mode: the GPU configuration (through
`ops.mlstm(backend="pallas")`), and the TPU one, whose state scan walks the chunks as a
sequential grid axis, also under TPU interpret mode. Head dims are the model's (64..256),
so the head-dim tile loops run more than once; sequences are short and the variants few
because every configuration costs seconds of compilation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, count_compiles, loss_weights, mlstm_inputs
from helpers import mlstm_outputs_and_grads, realistic_state

from pallas_kernels import compat
from pallas_kernels.mlstm_chunkwise import BlockSizes, mlstm_chunkwise_pallas, reference
from xlstm_jax import ops
from xlstm_jax.ops import gates
from xlstm_jax.ops.mlstm import BACKENDS, auto_backend

# (B, H, T, Dk, Dv, chunk): Dk != Dv both ways, T not a multiple of the chunk, T < chunk.
SHAPES = [
    (1, 2, 40, 64, 128, 16),
    (2, 1, 70, 256, 64, 32),
    (1, 1, 33, 128, 128, 64),
]


def _inputs(shape, dtype, seed=0):
  B, H, T, Dk, Dv, _ = shape
  args = (*mlstm_inputs(seed, B, H, T, Dk, Dv, dtype),
          realistic_state(seed, B, H, Dk, Dv, dtype=dtype))
  return args, loss_weights(seed, B, H, T, Dk, Dv, dtype)


def _run(shape, args, weights, backend, **gate_kwargs):
  return mlstm_outputs_and_grads(args, weights, backend=backend, chunk_size=shape[-1],
                                 **gate_kwargs)


def _to64(tree):
  return jax.tree.map(lambda x: jnp.asarray(np.asarray(x, np.float64)), tree)


def _truth(shape, args, weights, **gate_kwargs):
  """The float64 jnp chunkwise form (equal to the recurrent definition to roundoff,
  tests/test_mlstm_forms.py) on the same inputs."""
  return _run(shape, _to64(args), _to64(weights), "chunkwise", **gate_kwargs)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_equals_chunkwise_float64(x64, shape):
  """In float64 the kernels equal the jnp chunkwise form to roundoff: same algebra,
  forward and hand-written backward, initial-state gradients included."""
  args, weights = _inputs(shape, jnp.float64)
  out = _run(shape, args, weights, "pallas")
  assert out[0][0].dtype == jnp.float64
  assert_close(out, _run(shape, args, weights, "chunkwise"), 1e-10, "pallas vs chunkwise")


GATE_VARIANTS = [  # every knob, in three runs
    dict(igate="sigmoid", normalizer="none"),
    dict(fgate="exp", normalizer="abs", gate_soft_cap=15.0),
    dict(stabilize=False),
]


@pytest.mark.parametrize("gate_kwargs", GATE_VARIANTS, ids=str)
def test_gate_variants_float64(x64, gate_kwargs):
  shape = (1, 2, 29, 64, 64, 16)
  args, weights = _inputs(shape, jnp.float64)
  assert_close(_run(shape, args, weights, "pallas", **gate_kwargs),
               _run(shape, args, weights, "chunkwise", **gate_kwargs), 1e-10, "pallas")


@pytest.mark.parametrize("shape", SHAPES[:2], ids=str)
def test_float32(x64, shape):
  """float32 against the float64 truth, with the jnp forms' tolerances."""
  with jax.enable_x64(False):
    args, weights = _inputs(shape, jnp.float32)
    outputs, grads = _run(shape, args, weights, "pallas")
  assert outputs[0].dtype == jnp.float32
  truth = _truth(shape, args, weights)
  assert_close(outputs, truth[0], 2e-5, "outputs")
  assert_close(grads, truth[1], 5e-5, "grads")


def test_bfloat16(x64):
  """bf16 activations: the kernels' matmuls take bf16 inputs (the jnp forms upcast
  them), so the error is bf16's, a few 1e-3 of the scale; h and dq, dk, dv are bf16."""
  shape = (1, 2, 40, 64, 128, 16)
  with jax.enable_x64(False):
    args, weights = _inputs(shape, jnp.bfloat16)
    outputs, grads = _run(shape, args, weights, "pallas")
  assert outputs[0].dtype == jnp.bfloat16 and grads[0].dtype == jnp.bfloat16
  truth = _truth(shape, args, weights)
  assert_close(outputs, truth[0], 1e-2, "outputs")
  assert_close(grads, truth[1], 2e-2, "grads")


@pytest.mark.parametrize("cap,zero_state", [(None, True), (15.0, False)])
def test_extreme_gates(x64, cap, zero_state):
  """|i~|, |f~| up to 60, beyond float32's exp range without the stabilizer: the float32
  kernels stay finite and within float32 error of the float64 truth (measured ~5e-6;
  the float32 recurrent definition itself is ~2e-4 off, tests/test_mlstm_forms.py)."""
  B, H, T, Dk, Dv = 1, 2, 45, 64, 64
  rng = np.random.default_rng(3)
  with jax.enable_x64(False):
    q, k, v, _, _ = mlstm_inputs(3, B, H, T, Dk, Dv, jnp.float32)
    i = jnp.asarray(rng.uniform(-60, 60, (B, H, T)), jnp.float32)
    f = jnp.asarray(rng.uniform(-60, 60, (B, H, T)), jnp.float32)
    state = (ops.mlstm_zero_state(B, H, Dk, Dv) if zero_state
             else realistic_state(3, B, H, Dk, Dv))
    args, weights = (q, k, v, i, f, state), loss_weights(3, B, H, T, Dk, Dv)
    shape = (B, H, T, Dk, Dv, 16)
    outputs, grads = _run(shape, args, weights, "pallas", gate_soft_cap=cap)
  truth = _truth(shape, args, weights, gate_soft_cap=cap)
  grad_scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(truth[1]))
  assert_close(outputs, truth[0], 5e-5, "outputs")
  assert_close(grads[:5], truth[1][:5], 5e-5, "grads")
  # d/dm0 acts only through eps: compared on the scale of all gradients.
  assert_close(grads[5], truth[1][5], 3e-5, "state grads", scale=grad_scale)


@pytest.mark.parametrize("extreme", ["forget", "input", "both"])
def test_extreme_gates_float32_precision(x64, extreme):
  """Gate pre-activations uniform in +-30 at the GPU chunk (64): |cumsum log f| inside a
  chunk reaches ~1e3, and log W_tj = b_t - b_j + log i_j formed in one float loses ~eps |b|
  (h was 3e-6..2e-5 off). The kernels must be as accurate as the jnp form, which sums each
  segment: both are held to the same float32-roundoff tolerances against the float64
  parallel form. q, k > 0, so no q.n nearly cancels: h is as well conditioned as its
  weights (otherwise every form, the recurrent one included, is ~1e-5 off)."""
  B, H, T, D, chunk = 1, 2, 100, 64, 64  # T: a full chunk and a padded one
  for seed in range(3):
    rng = np.random.default_rng(seed)
    with jax.enable_x64(False):
      q, k, v, i, f = mlstm_inputs(seed, B, H, T, D, D)
      if extreme in ("forget", "both"):
        f = jnp.asarray(rng.uniform(-30, 30, f.shape), jnp.float32)
      if extreme in ("input", "both"):
        i = jnp.asarray(rng.uniform(-30, 30, i.shape), jnp.float32)
      args = (jnp.abs(q), jnp.abs(k), v, i, f, ops.mlstm_zero_state(B, H, D, D))
      weights = loss_weights(seed, B, H, T, D, D)
      runs = {backend: mlstm_outputs_and_grads(args, weights, backend=backend,
                                               chunk_size=chunk)
              for backend in ("pallas", "chunkwise")}
    truth = mlstm_outputs_and_grads(_to64(args), _to64(weights), backend="parallel")
    for backend, (outputs, grads) in runs.items():
      # Measured (seeds 0-2): h, C, n, m <= 8e-7; grads <= 3e-6 (d log i, d log f).
      assert_close(outputs, truth[0], 2e-6, f"{backend} outputs, seed {seed}")
      assert_close(grads[:5], truth[1][:5], 6e-6, f"{backend} grads, seed {seed}")


def test_state_passing(x64):
  """T1 tokens then T2 with the carried state equals T1 + T2 at once (split mid-chunk)."""
  q, k, v, i, f = mlstm_inputs(5, 1, 2, 42, 64, 64, jnp.float64)
  state0 = realistic_state(5, 1, 2, 64, 64, dtype=jnp.float64)
  kw = dict(backend="pallas", chunk_size=16, return_state=True)
  h_all, s_all = ops.mlstm(q, k, v, i, f, initial_state=state0, **kw)
  with count_compiles() as first:
    h1, s1 = ops.mlstm(*(x[:, :, :21] for x in (q, k, v, i, f)), initial_state=state0, **kw)
  assert first, "a new T compiles (else the counter sees nothing)"
  second = [x[:, :, 21:] for x in (q, k, v, i, f)]
  with count_compiles() as again:
    h2, s2 = ops.mlstm(*second, initial_state=s1, **kw)
  assert not again, "same shapes and options: no recompilation"
  assert_close((jnp.concatenate([h1, h2], axis=2), s2), (h_all, s_all), 1e-10, "pallas")


def _direct(blocks, interpret, shape=(1, 2, 40, 64, 128, 16)):
  """The op called directly (log gates in), against its jnp reference, float32."""
  B, H, T, Dk, Dv, chunk = shape
  q, k, v, i, f = mlstm_inputs(1, B, H, T, Dk, Dv)
  log_i, log_f = gates.GateOptions().log_gates(i, f)
  args = (q, k, v, log_i, log_f, tuple(realistic_state(1, B, H, Dk, Dv)))
  w_h, w_c, w_n, w_m = loss_weights(1, B, H, T, Dk, Dv)

  def loss(fn, *a):
    h, (C, n, m) = fn(*a)
    return (h * w_h).sum() + (C * w_c).sum() + (n * w_n).sum() + (m * w_m).sum()

  grad = lambda fn: jax.value_and_grad(loss, argnums=tuple(range(1, 7)))(fn, *args)  # noqa: E731
  kernel = grad(lambda *a: mlstm_chunkwise_pallas(*a, blocks=blocks, interpret=interpret))
  ref = grad(lambda *a: reference(*a, chunk=chunk))
  assert_close(kernel, ref, 2e-5, f"{blocks.target} kernels vs reference")


def test_tpu_configuration():
  """The TPU blocks (chunks as a sequential grid axis) in plain interpret mode."""
  _direct(BlockSizes("tpu", chunk=16), interpret=True)


def test_tpu_interpret_mode():
  """The TPU blocks under TPU interpret mode, which simulates VMEM and fills unwritten
  buffers with NaN: an output block a program forgets to write fails the test."""
  from jax.experimental.pallas import tpu as pltpu
  _direct(BlockSizes("tpu", chunk=16), interpret=pltpu.InterpretParams(),
          shape=(1, 1, 24, 64, 128, 16))


@pytest.mark.parametrize("target,platform", [("gpu", "cuda"), ("tpu", "tpu")])
def test_lowers_for_hardware(target, platform):
  """Forward and backward lower to Triton (GPU) and Mosaic (TPU) at the 7B model's head
  dims in bf16: every primitive in the kernels has a lowering rule and every block
  shape passes the backend's checks. (Compiling and running need the hardware.)"""
  B, H, T, Dk, Dv = 1, 2, 200, 256, 512
  q = jnp.zeros((B, H, T, Dk), jnp.bfloat16)
  v = jnp.zeros((B, H, T, Dv), jnp.bfloat16)
  g = jnp.zeros((B, H, T))
  state = (jnp.zeros((B, H, Dk, Dv)), jnp.zeros((B, H, Dk)), jnp.zeros((B, H)))
  blocks = BlockSizes(target)

  def loss(*a):
    h, s = mlstm_chunkwise_pallas(*a, blocks=blocks, interpret=False)
    return h.astype(jnp.float32).sum() + s[0].sum() + s[1].sum() + s[2].sum()

  lowered = jax.jit(jax.grad(loss, argnums=tuple(range(6)))).trace(
      q, q, v, g, g, state).lower(lowering_platforms=(platform,))
  text = lowered.as_text()
  marker = compat.triton_custom_call_target() if target == "gpu" else "tpu_custom_call"
  assert text.count(marker) == 4, "expected 4 kernels: 2 forward, 2 backward"


@pytest.mark.parametrize("blocks,Dk,Dv,match", [
    (BlockSizes("gpu", chunk=24), 64, 64, r"chunk=24: the Triton \(GPU\) kernels need a power"),
    (BlockSizes("gpu", block_dk=48), 64, 64, r"Dk=64 with tile 48: the Triton \(GPU\) kernels"),
    (BlockSizes("tpu", chunk=100), 128, 128, r"chunk=100: the TPU kernels need a multiple of 8"),
    (BlockSizes("tpu", block_dk=64), 256, 128, r"Dk=256 with tile 64: a TPU tile must be"),
])
def test_unsupported_shapes(blocks, Dk, Dv, match):
  """Chunks and block sizes the target cannot take raise, naming the value. (Head dims
  that are not tile multiples are padded: tests/test_pallas_shapes.py.)"""
  q, k, v, i, f = mlstm_inputs(0, 1, 1, 8, Dk, Dv)
  state = ops.mlstm_zero_state(1, 1, Dk, Dv)
  with pytest.raises(ValueError, match=match):
    mlstm_chunkwise_pallas(q, k, v, i, f, state, blocks=blocks)


@pytest.mark.parametrize("platform,expected", [
    ("cpu", "chunkwise"), ("gpu", "pallas"), ("tpu", "pallas")])
def test_auto_backend(monkeypatch, platform, expected):
  monkeypatch.setattr(jax, "default_backend", lambda: platform)
  assert auto_backend() == expected == auto_backend(T=4096)
  assert auto_backend(T=64) == ("parallel" if platform == "cpu" else "pallas")
  assert BlockSizes.default().target == ("tpu" if platform == "tpu" else "gpu")


def test_dispatch_errors_and_defaults():
  q, k, v, i, f = mlstm_inputs(0, 1, 1, 8, 24, 32)
  with pytest.raises(ValueError, match=r"chunk=24: the Triton \(GPU\) kernels need a power"):
    ops.mlstm(q, k, v, i, f, backend="pallas", chunk_size=24)
  with pytest.raises(ValueError, match=r"target='cuda' is not one of"):
    BlockSizes("cuda")
  with pytest.raises(ValueError, match=r"num_warps=0 must be a positive int"):
    BlockSizes(num_warps=0)
  assert "pallas" in BACKENDS
  assert BlockSizes("tpu").chunk == 128 and BlockSizes().chunk == 64
