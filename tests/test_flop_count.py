"""FLOPs counted from the jaxpr (counting/count.py) against counts written out by hand."""

import jax
import jax.numpy as jnp
import pytest

from xlstm_jax import ops, presets
from xlstm_jax.counting.count import FlopCount, count_flops, model_flops
from xlstm_jax.counting.flops import matmul_params


def S(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.float32)


def test_primitives():
  assert count_flops(jnp.matmul, S(3, 5), S(5, 7)) == FlopCount(matmul=2 * 3 * 5 * 7)
  batched = count_flops(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), S(4, 3, 5), S(4, 5, 2))
  assert batched.matmul == 2 * 4 * 3 * 2 * 5
  conv = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731 (depthwise, 4 taps)
      x, w, (1,), [(3, 0)], dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=6)
  assert count_flops(conv, S(2, 10, 6), S(4, 1, 6)).matmul == 2 * (2 * 10 * 6) * 1 * 4
  ew = count_flops(lambda x: jnp.exp(x) * 2.0 + x.sum(), S(8, 4))
  assert ew == FlopCount(elementwise=32 + 32 + 32, transcendental=32)  # mul, add, sum inputs
  assert count_flops(lambda x: x.T.reshape(-1)[:5], S(8, 4)).total == 0  # data movement

  def scanned(x):
    return jax.lax.scan(lambda c, _: (c @ x, None), x, None, length=6)[0]
  assert count_flops(scanned, S(4, 4)).matmul == 6 * 2 * 4 * 4 * 4
  costly = lambda p, x: jax.lax.cond(p, lambda y: y @ y, lambda y: y, x)  # noqa: E731
  assert count_flops(costly, jax.ShapeDtypeStruct((), bool), S(3, 3)).matmul == 2 * 27
  looped = lambda x: jax.lax.while_loop(lambda c: c.sum() < 1, lambda c: c * 2, x)  # noqa: E731
  with pytest.raises(ValueError, match="while loop's trip count is not static"):
    count_flops(looped, S(3))


B, H, T, D, CHUNK = 1, 2, 16, 8, 4


def _mlstm_count(backend):
  f = lambda q, k, v, i, g: ops.mlstm(q, k, v, i, g, backend=backend,  # noqa: E731
                                      chunk_size=CHUNK)
  return count_flops(f, S(B, H, T, D), S(B, H, T, D), S(B, H, T, D), S(B, H, T), S(B, H, T))


def test_mlstm_forms_by_hand():
  # recurrent: per token and head, q.C (2 d d) and q.n (2 d); the C update k v^T, the gate
  # scalings and the sum are elementwise (4 d d)
  rec = _mlstm_count("recurrent")
  assert rec.matmul == B * H * T * (2 * D * D + 2 * D)
  assert rec.elementwise >= B * H * T * 4 * D * D
  # parallel: q k^T and s v over the full T x T (2 T^2 d each), q.C0 and the final state
  # sum_j w_j k_j v_j^T (2 T d d each), q.n0 and n (2 T d each), and the batched product
  # w_j k_j that einsum forms on the way to C (2 T d)
  par = _mlstm_count("parallel")
  assert par.matmul == B * H * (2 * T * T * 2 * D + 4 * T * D * D + 6 * T * D)
  # chunkwise, chunk L: within each chunk q k^T and s v (2 L^2 d each); across chunks q.C
  # and q.n per token (2 d d + 2 d) and one state update per chunk, K^T V and K^T 1
  # (2 L d d + 2 L d): per token 4 L d + 4 d d + 4 d
  chunk = _mlstm_count("chunkwise")
  assert chunk.matmul == B * H * T * (4 * CHUNK * D + 4 * D * D + 4 * D)
  assert rec.matmul < chunk.matmul < par.matmul


def test_llama_forward_and_train_by_hand():
  cfg = presets.model_config("llama_tiny")
  E, L, seq = cfg.embedding_dim, cfg.num_blocks, 64
  norms = (2 * L + 1) * E  # RMSNorm scales: parameters that do no matmul
  # every weight matrix: one multiply-add per token; attention over the full T x T (the
  # causal mask does not skip work): q k^T and p v, 2 T E each, per layer
  fwd = model_flops(cfg, seq, train=False)
  assert fwd["matmul"] == 2 * (matmul_params(cfg) - norms) + L * 4 * seq * E
  train = model_flops(cfg, seq)
  assert train["matmul"] == 3 * fwd["matmul"]  # backward: input and weight gradients
  assert train["total"] == pytest.approx(
      train["matmul"] + train["elementwise"] + train["transcendental"])
  remat = model_flops(cfg.replace(remat=True), seq)
  assert train["matmul"] < remat["matmul"] <= train["matmul"] + fwd["matmul"]


def test_xlstm_forms_scale_as_they_should():
  cfg = presets.model_config("xlstm_tiny")   # mLSTM blocks and one sLSTM block
  per_token = {b: model_flops(cfg.replace(backend=b), 128)["matmul"]
               for b in ("recurrent", "chunkwise", "parallel")}
  assert per_token["recurrent"] < per_token["chunkwise"] < per_token["parallel"]
  longer = {b: model_flops(cfg.replace(backend=b), 256)["matmul"] for b in ("recurrent",
                                                                            "parallel")}
  assert longer["recurrent"] == pytest.approx(per_token["recurrent"])  # linear in T
  assert longer["parallel"] > 1.3 * per_token["parallel"]                # quadratic in T
  rec_forward = model_flops(cfg.replace(backend="recurrent"), 128, train=False)["matmul"]
  assert per_token["recurrent"] == 3 * rec_forward   # autodiff: 2 matmuls per forward one
  with pytest.raises(ValueError, match="seq_len=0 must be a positive int"):
    model_flops(cfg, 0)


def test_pallas_kernels_count_once_per_grid_program():
  """A pallas_call's body runs once per program of its grid; so the Pallas backend counts
  about what the chunkwise form it implements does (it adds the double-float cumsum)."""
  from jax.experimental import pallas as pl  # noqa: PLC0415

  def kernel(x_ref, o_ref):
    o_ref[...] = x_ref[...] * 2.0 + 1.0
  spec = pl.BlockSpec((4, 4), lambda i, j: (i, j))
  call = lambda x: pl.pallas_call(  # noqa: E731
      kernel, grid=(3, 2), in_specs=[spec], out_specs=spec,
      out_shape=jax.ShapeDtypeStruct((12, 8), jnp.float32), interpret=True)(x)
  assert count_flops(call, S(12, 8)) == FlopCount(elementwise=2 * 12 * 8)
  totals = {backend: model_flops(presets.model_config(
      "xlstm10_tiny", vocab_size=257, embedding_dim=32, num_blocks=1, backend=backend,
      chunk_size=16), 64)["total"] for backend in ("chunkwise", "pallas")}
  assert totals["pallas"] == pytest.approx(totals["chunkwise"], rel=0.02)
