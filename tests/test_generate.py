"""generate(): greedy equals recomputing the whole sequence, sampling, constant state size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlstm_jax import presets
from xlstm_jax import generate
from xlstm_jax.nn import LanguageModel, init_params


def model_and_params(name, **kw):
  model = LanguageModel(presets.model_config(name, vocab_size=64, **kw))
  return model, init_params(model, jax.random.key(0))


def greedy_by_recompute(model, params, prompt, n):
  tokens = jnp.asarray(prompt)
  for _ in range(n):
    nxt = jnp.argmax(model.apply({"params": params}, tokens)[:, -1], axis=-1)
    tokens = jnp.concatenate([tokens, nxt[:, None].astype(tokens.dtype)], axis=1)
  return tokens


@pytest.mark.parametrize("name", ["xlstm_tiny", "llama_tiny"])
def test_greedy_equals_recompute(name):
  model, params = model_and_params(name)
  prompt = np.random.default_rng(0).integers(0, 64, (2, 7))
  out = generate(model, params, prompt, 4)
  assert out.shape == (2, 11) and out.dtype == jnp.int32
  np.testing.assert_array_equal(out, greedy_by_recompute(model, params, prompt, 4))


def test_sampling():
  model, params = model_and_params("large_tiny")
  prompt = np.random.default_rng(1).integers(0, 64, (3, 5))
  greedy = generate(model, params, prompt, 5)
  np.testing.assert_array_equal(
      generate(model, params, prompt, 5, temperature=1.0, top_k=1, rng=jax.random.key(3)),
      greedy)
  a = generate(model, params, prompt, 8, temperature=1.0, rng=jax.random.key(3))
  b = generate(model, params, prompt, 8, temperature=1.0, rng=jax.random.key(3))
  c = generate(model, params, prompt, 8, temperature=1.0, rng=jax.random.key(4))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  np.testing.assert_array_equal(a[:, :5], prompt)
  # top_k=3: each sampled token is among the 3 most likely given its prefix.
  s = generate(model, params, prompt, 4, temperature=2.0, top_k=3, rng=jax.random.key(5))
  logits = model.apply({"params": params}, s[:, :-1])
  top3 = np.asarray(jax.lax.top_k(logits, 3)[1])
  for t in range(5, 9):
    assert all(int(s[b, t]) in top3[b, t - 1] for b in range(3))


def test_xlstm_state_size_does_not_grow_with_context():
  model, params = model_and_params("xlstm_tiny")
  shapes = []
  for T in (8, 64):
    _, state = jax.eval_shape(
        lambda p, t: model.apply({"params": p}, t, state=model.init_state(1), return_state=True),
        params, jnp.zeros((1, T), jnp.int32))
    shapes.append(jax.tree.map(lambda x: x.shape, state))
  assert shapes[0] == shapes[1]
  llama = LanguageModel(presets.model_config("llama_tiny"))
  kv = [llama.init_state(1, T)[0]["k"].shape[1] for T in (8, 64)]
  assert kv == [8, 64]  # the baseline's KV cache grows with context


def test_generate_errors():
  model, params = model_and_params("xlstm_tiny")
  prompt = np.zeros((1, 3), np.int32)
  with pytest.raises(ValueError, match="prompt_tokens must be int \\[B, T\\]"):
    generate(model, params, np.zeros((3,), np.int32), 2)
  with pytest.raises(ValueError, match="max_new_tokens=-1"):
    generate(model, params, prompt, -1)
  with pytest.raises(ValueError, match="pass rng"):
    generate(model, params, prompt, 2, temperature=0.5)
  with pytest.raises(ValueError, match="top_k=0"):
    generate(model, params, prompt, 2, top_k=0)
  np.testing.assert_array_equal(generate(model, params, prompt, 0), prompt)
