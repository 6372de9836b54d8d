"""Blocks and language models: forms agree, causality, state passing, scan/remat, init."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import assert_close
from xlstm_jax import presets
from xlstm_jax.nn import LanguageModel, ModelConfig, init_params

TINY = {
    "xlstm": dict(arch="xlstm", vocab_size=50, embedding_dim=32, num_blocks=3, slstm_at=(1,),
                  num_heads=2, slstm_num_heads=2, chunk_size=4),
    "large": dict(arch="large", vocab_size=50, embedding_dim=32, num_blocks=2, num_heads=2,
                  ffn_act="silu", ffn_proj_factor=2.667, norm_eps=1e-6, igate_bias_init=-10.0,
                  gate_soft_cap=15.0, logit_soft_cap=30.0, chunk_size=4),
    "llama": dict(arch="llama", vocab_size=50, embedding_dim=32, num_blocks=2, num_heads=2,
                  ffn_act="silu", ffn_proj_factor=8 / 3),
}
TINY["llama_conv"] = dict(TINY["llama"], attn_conv_kernel_size=3)  # conv before q and k


def tokens(seed=0, B=2, T=13, V=50):
  return jnp.asarray(np.random.default_rng(seed).integers(0, V, (B, T)), jnp.int32)


def build(arch, **kw):
  model = LanguageModel(ModelConfig(**{**TINY[arch], **kw}))
  params = init_params(model, jax.random.key(1))
  # Random, not-init-special parameters so every path carries signal.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys)])
  return model, params


@pytest.mark.parametrize("arch", ["xlstm", "large"])
def test_backends_agree_forward_and_grad(arch):
  toks = tokens()
  results = {}
  for backend in ("recurrent", "parallel", "chunkwise"):
    model, params = build(arch, backend=backend)
    loss = lambda p: jnp.mean(jax.nn.log_softmax(model.apply({"params": p}, toks))[..., 0])
    results[backend] = (model.apply({"params": params}, toks), jax.jit(jax.grad(loss))(params))
  for backend in ("parallel", "chunkwise"):
    assert_close(results[backend][0], results["recurrent"][0], 2e-5, f"{backend} logits")
    assert_close(results[backend][1], results["recurrent"][1], 1e-4, f"{backend} grads")


@pytest.mark.parametrize("arch", ["xlstm", "large", "llama", "llama_conv"])
def test_causal(arch):
  model, params = build(arch)
  toks = tokens()
  t0 = 7
  changed = toks.at[:, t0:].set((toks[:, t0:] + 1) % 50)
  a = model.apply({"params": params}, toks)
  b = model.apply({"params": params}, changed)
  np.testing.assert_array_equal(np.asarray(a[:, :t0]), np.asarray(b[:, :t0]))
  assert np.abs(np.asarray(a[:, t0:] - b[:, t0:])).max() > 1e-3


@pytest.mark.parametrize("arch, scan", [("xlstm", False), ("large", False), ("llama", False),
                                        ("large", True), ("llama", True), ("llama_conv", False),
                                        ("llama_conv", True)])
def test_state_passing_prefill_then_steps(arch, scan):
  model, params = build(arch, scan_blocks=scan)
  toks = tokens(T=12)
  full = model.apply({"params": params}, toks)
  state = model.init_state(2, 12)
  first, state = model.apply({"params": params}, toks[:, :5], state=state, return_state=True)
  second, state = model.apply({"params": params}, toks[:, 5:9], state=state, return_state=True)
  steps = []
  for t in range(9, 12):
    out, state = model.apply({"params": params}, toks[:, t:t + 1], state=state,
                             return_state=True)
    steps.append(out)
  pieced = jnp.concatenate([first, second, *steps], axis=1)
  assert_close(pieced, full, 1e-5, "prefill + continue + steps")


def test_none_state_is_the_empty_state():
  model, params = build("xlstm")
  toks = tokens()
  a, state_a = model.apply({"params": params}, toks, return_state=True)
  b, state_b = model.apply({"params": params}, toks, state=model.init_state(2),
                           return_state=True)
  assert_close((a, state_a), (b, state_b), 1e-7, "None vs init_state")


@pytest.mark.parametrize("arch", ["large", "llama", "llama_conv"])
def test_scan_equals_loop(arch):
  loop_model, params = build(arch)
  scan_model = LanguageModel(loop_model.cfg.replace(scan_blocks=True))
  blocks = [params["stack"][f"block_{i}"] for i in range(loop_model.cfg.num_blocks)]
  scan_params = {k: v for k, v in params.items() if k != "stack"}
  scan_params["stack"] = {"blocks": jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)}
  expected_tree = jax.tree.structure(init_params(scan_model, jax.random.key(0)))
  assert jax.tree.structure(scan_params) == expected_tree
  toks = tokens()
  assert_close(scan_model.apply({"params": scan_params}, toks),
               loop_model.apply({"params": params}, toks), 1e-5, "scan vs loop")


@pytest.mark.parametrize("arch, scan", [("xlstm", False), ("large", True)])
def test_remat_same_values_and_grads(arch, scan):
  model, params = build(arch, scan_blocks=scan)
  remat = LanguageModel(model.cfg.replace(remat=True))
  toks = tokens()
  loss = lambda m: jax.jit(jax.value_and_grad(
      lambda p: jnp.mean(m.apply({"params": p}, toks) ** 2)))
  assert_close(loss(remat)(params), loss(model)(params), 1e-5, "remat")


def test_bfloat16_activations_track_float32():
  model, params = build("xlstm")
  bf16 = LanguageModel(model.cfg.replace(dtype="bfloat16"))
  toks = tokens()
  out = bf16.apply({"params": params}, toks)
  assert out.dtype == jnp.float32  # logits are returned in float32
  assert_close(out, model.apply({"params": params}, toks), 5e-2, "bf16 vs f32")


def test_gate_knobs_and_cell_variants_reach_the_cells():
  model, params = build("xlstm")
  toks = tokens()
  base = model.apply({"params": params}, toks)
  for kw in (dict(igate="sigmoid"), dict(gate_soft_cap=2.0), dict(normalizer="abs")):
    out = LanguageModel(model.cfg.replace(**kw)).apply({"params": params}, toks)
    assert np.isfinite(np.asarray(out)).all()
    assert np.abs(np.asarray(out - base)).max() > 1e-4, kw
  lstm = LanguageModel(model.cfg.replace(slstm_cell="lstm"))
  assert np.isfinite(np.asarray(lstm.apply({"params": params}, toks))).all()
  no_mix = LanguageModel(model.cfg.replace(memory_mixing=False))
  p = init_params(no_mix, jax.random.key(0))
  assert "recurrent_kernel" not in p["stack"]["block_1"]
  assert "recurrent_kernel" in params["stack"]["block_1"]


def test_bad_tokens_are_refused():
  model, params = build("xlstm")
  with pytest.raises(ValueError, match="tokens must be int \\[B, T\\]"):
    model.apply({"params": params}, jnp.zeros((2, 3, 4), jnp.int32))
  with pytest.raises(ValueError, match="init_state needs max_len"):
    build("llama")[0].init_state(2)


def test_every_parameter_has_logical_axes():
  for arch in TINY:
    model = LanguageModel(ModelConfig(**TINY[arch]))
    boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
    for path, leaf in jax.tree_util.tree_leaves_with_path(
        boxed["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)):
      assert isinstance(leaf, nn.LogicallyPartitioned), jax.tree_util.keystr(path)
      assert len(leaf.names) == len(leaf.value.shape), jax.tree_util.keystr(path)


def std(x):
  return float(np.std(np.asarray(x)))


def test_init_statistics_xlstm():
  cfg = ModelConfig(**{**TINY["xlstm"], "embedding_dim": 256, "num_blocks": 3})
  p = init_params(LanguageModel(cfg), jax.random.key(0))
  E, L = 256, 3
  m, s = p["stack"]["block_0"], p["stack"]["block_1"]
  assert std(p["embedding"]) == pytest.approx((2 / (5 * E)) ** 0.5, rel=0.05)
  assert std(m["proj_up"]["kernel"]) == pytest.approx((2 / (5 * E)) ** 0.5, rel=0.05)
  assert std(m["q"]["kernel"]) == pytest.approx((2 / (5 * E)) ** 0.5, rel=0.05)
  assert std(m["proj_down"]["kernel"]) == pytest.approx(2 / L / E ** 0.5, rel=0.05)
  np.testing.assert_allclose(m["fgate"]["bias"], np.linspace(3, 6, cfg.num_heads), rtol=1e-6)
  assert not np.any(m["fgate"]["kernel"]) and not np.any(m["igate"]["kernel"])
  np.testing.assert_array_equal(m["skip"], 1.0)
  assert not np.any(m["norm"]["scale"]) and not np.any(m["outnorm"]["scale"])  # 1 + 0
  # sLSTM at block 1 of 3: powerlaw forget bias with ratio 1/2, other gates zero.
  D = E // cfg.slstm_num_heads
  d = np.arange(D) / (D - 1)
  expected_f = -(-5.0 + 12.0 * d ** (0.3 + 1.3 * 0.5))
  np.testing.assert_allclose(s["bias"][1], np.broadcast_to(expected_f, (2, D)), rtol=1e-5,
                             atol=1e-6)
  assert not np.any(np.asarray(s["bias"])[[0, 2, 3]]) and not np.any(s["recurrent_kernel"])
  assert std(s["ffn"]["down"]["kernel"]) == pytest.approx(2 / L / E ** 0.5, rel=0.05)


def test_init_statistics_large():
  cfg = presets.model_config("large_tiny", embedding_dim=256)
  p = init_params(LanguageModel(cfg), jax.random.key(0))
  b = p["stack"]["block_0"]
  E, L = 256, cfg.num_blocks
  np.testing.assert_array_equal(b["igate"]["bias"], -10.0)
  np.testing.assert_allclose(b["fgate"]["bias"], np.linspace(3, 6, cfg.num_heads), rtol=1e-6)
  for name in ("igate", "fgate", "ogate"):
    assert not np.any(b[name]["kernel"]), name
  assert not np.any(b["ffn"]["gate"]["kernel"])
  assert std(b["q"]["kernel"]) == pytest.approx((2 / (5 * E)) ** 0.5, rel=0.05)
  assert std(b["out_proj"]["kernel"]) == pytest.approx(2 / L / E ** 0.5, rel=0.05)
  assert std(b["ffn"]["down"]["kernel"]) == pytest.approx(2 / L / cfg.ffn_dim ** 0.5, rel=0.05)
  np.testing.assert_array_equal(b["norm_mlstm"]["scale"], 1.0)


def test_tied_embeddings_share_the_matrix():
  model, params = build("xlstm", tie_embeddings=True)
  assert "lm_head" not in params
  toks = tokens()
  absent = min(set(range(50)) - set(np.asarray(toks).ravel().tolist()))
  grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, toks)[:, :, absent]))(params)
  # Only the head reads the row of a token absent from the input: it must get gradient.
  assert np.abs(np.asarray(grads["embedding"][absent])).max() > 0
  untied = LanguageModel(model.cfg.replace(tie_embeddings=False))
  n = lambda p: sum(x.size for x in jax.tree.leaves(p))
  assert n(init_params(untied, jax.random.key(0))) - n(params) == 50 * 32


def test_pallas_backend_reaches_the_kernels():
  """backend="pallas" (interpret mode on CPU) gives the chunkwise logits and gradients."""
  model, params = build("large", embedding_dim=64, backend="chunkwise", chunk_size=16)
  pallas = LanguageModel(model.cfg.replace(backend="pallas"))
  toks = tokens(T=20)
  loss = lambda m: jax.jit(jax.value_and_grad(
      lambda p: jnp.mean(m.apply({"params": p}, toks) ** 2)))
  assert_close(loss(pallas)(params), loss(model)(params), 1e-4, "pallas vs chunkwise")


def test_llama_conv_is_used_and_absent_by_default():
  """attn_conv_kernel_size=K adds a [K, E] conv per block that changes the logits; 0 (the
  default, the plain Llama) has no conv parameters at all."""
  model, params = build("llama_conv")
  toks = tokens()
  assert params["stack"]["block_0"]["conv"]["kernel"].shape == (3, 32)
  zeroed = dict(params, stack=dict(params["stack"]))
  zeroed["stack"]["block_0"] = dict(params["stack"]["block_0"], conv=jax.tree.map(
      jnp.zeros_like, params["stack"]["block_0"]["conv"]))
  diff = model.apply({"params": zeroed}, toks) - model.apply({"params": params}, toks)
  assert np.abs(np.asarray(diff)).max() > 1e-3
  plain, _ = build("llama")
  assert all("conv" not in blk for blk in init_params(plain, jax.random.key(0))["stack"].values())


def test_llama_conv_kernel_size_is_checked():
  with pytest.raises(ValueError, match="attn_conv_kernel_size=-1"):
    ModelConfig(**{**TINY["llama"], "attn_conv_kernel_size": -1})
