"""The shared layers against plain numpy definitions."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlstm_jax.nn import layers


def init_apply(module, *args):
  params = nn.unbox(module.init(jax.random.key(0), *args))
  params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape),
                        params)
  return module.apply(params, *args), jax.tree.map(np.asarray, params["params"])


def test_causal_conv_matches_numpy_and_continues():
  x = np.random.default_rng(0).normal(size=(2, 9, 5)).astype(np.float32)
  (y, state), p = init_apply(layers.CausalConv1D(kernel_size=4), jnp.asarray(x))
  k, b = p["kernel"], p["bias"]
  xp = np.concatenate([np.zeros((2, 3, 5), np.float32), x], axis=1)
  expected = sum(k[j] * xp[:, j:j + 9] for j in range(4)) + b
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(state, x[:, -3:])
  conv = layers.CausalConv1D(kernel_size=4)
  params = {"params": jax.tree.map(jnp.asarray, p)}
  y1, s1 = conv.apply(params, jnp.asarray(x[:, :4]))
  y2, _ = conv.apply(params, jnp.asarray(x[:, 4:]), s1)
  np.testing.assert_allclose(np.concatenate([y1, y2], 1), y, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="conv state.shape"):
    conv.apply(params, jnp.asarray(x), jnp.zeros((2, 2, 5)))


def test_norms_match_numpy():
  x = np.random.default_rng(1).normal(2.0, 3.0, size=(3, 4, 16)).astype(np.float32)
  y, p = init_apply(layers.RMSNorm(eps=1e-6), jnp.asarray(x))
  rms = np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(y, x / rms * np.asarray(p["scale"]), rtol=1e-5)
  y, p = init_apply(layers.LayerNorm(eps=1e-5, use_bias=True, residual_scale=True),
                    jnp.asarray(x))
  z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(y, z * (1 + np.asarray(p["scale"])) + np.asarray(p["bias"]), rtol=1e-4,
                             atol=1e-5)
  xh = x.reshape(3, 4, 4, 4)  # [..., H, D]
  y, p = init_apply(layers.MultiHeadNorm("layer", eps=1e-5), jnp.asarray(xh))
  zh = (xh - xh.mean(-1, keepdims=True)) / np.sqrt(xh.var(-1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(y, zh.reshape(3, 4, 16) * np.asarray(p["scale"]), rtol=1e-4,
                             atol=1e-5)


@pytest.mark.parametrize("block", [4, layers.ELEMENTWISE_MAX_BLOCK + 1])  # both code paths
def test_headwise_linear_is_block_diagonal(block):
  x = np.random.default_rng(2).normal(size=(2, 3, 3 * block)).astype(np.float32)
  module = layers.HeadwiseLinear(num_heads=3, features=6, use_bias=True)
  y, p = init_apply(module, jnp.asarray(x))
  w = np.asarray(p["kernel"])  # [3, block, 2]
  dense = np.zeros((3 * block, 6), np.float32)
  for h in range(3):
    dense[block * h:block * (h + 1), 2 * h:2 * h + 2] = w[h]
  np.testing.assert_allclose(y, x @ dense + p["bias"], rtol=1e-5, atol=1e-6)
  # gradients as the dense block-diagonal matmul's
  loss = lambda params, x: (module.apply({"params": params}, x) ** 2).sum()
  g_params, g_x = jax.grad(loss, argnums=(0, 1))(p, jnp.asarray(x))
  dy = 2 * (x @ dense + p["bias"])
  np.testing.assert_allclose(g_x, dy @ dense.T, rtol=1e-4, atol=1e-5)
  g_dense = np.einsum("bti,bto->io", x, dy)
  np.testing.assert_allclose(
      g_params["kernel"], np.stack([g_dense[block * h:block * (h + 1), 2 * h:2 * h + 2]
                                    for h in range(3)]), rtol=1e-4, atol=1e-4)
  # bfloat16 compute stays close to the float32 result (accumulated in float32)
  y16 = layers.HeadwiseLinear(num_heads=3, features=6, use_bias=True,
                              dtype=jnp.bfloat16).apply({"params": p}, jnp.asarray(x))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), y, rtol=3e-2, atol=3e-2)


def test_gated_ffn_is_swiglu():
  x = np.random.default_rng(3).normal(size=(2, 5, 8)).astype(np.float32)
  y, p = init_apply(layers.GatedFFN(hidden=16, act="silu"), jnp.asarray(x))
  g, u, d = (np.asarray(p[n]["kernel"]) for n in ("gate", "up", "down"))
  silu = lambda a: a / (1 + np.exp(-a))
  np.testing.assert_allclose(y, (silu(x @ g) * (x @ u)) @ d, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(6,), (3, 6), (2, 5, 6), (2, 0, 6)])
def test_token_dot_is_a_dot_over_the_last_axis(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (6, 4))
  y = layers.token_dot(x, w)
  assert y.shape == (*shape[:-1], 4)
  np.testing.assert_allclose(y, np.asarray(x) @ np.asarray(w), rtol=1e-5, atol=1e-5)
