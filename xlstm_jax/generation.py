"""Autoregressive generation: one prefill, then one jitted loop of single-token steps.

The prompt is processed by the model's sequence form (chunkwise for the xLSTM) and
returns every block's state; decoding then runs the step forms inside `lax.scan`. For the
xLSTM the state has a fixed size, so memory and per-token cost do not grow with context.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def generate(model, params, prompt_tokens, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, rng: jax.Array | None = None) -> jax.Array:
  """Returns prompt + continuation, int32 [B, T + max_new_tokens].

  temperature 0 is greedy decoding; otherwise tokens are sampled from
  softmax(logits / temperature), restricted to the `top_k` most likely if given.
  """
  prompt_tokens = jnp.asarray(prompt_tokens)
  if prompt_tokens.ndim != 2 or not jnp.issubdtype(prompt_tokens.dtype, jnp.integer):
    raise ValueError(f"prompt_tokens must be int [B, T], got "
                     f"{prompt_tokens.dtype}{list(prompt_tokens.shape)}")
  if prompt_tokens.shape[1] == 0:
    raise ValueError(f"prompt_tokens.shape={prompt_tokens.shape} has no tokens to start from")
  if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
    raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 0")
  if not temperature >= 0:
    raise ValueError(f"temperature={temperature!r} must be >= 0")
  if top_k is not None and not (isinstance(top_k, int) and top_k > 0):
    raise ValueError(f"top_k={top_k!r} must be None or a positive int")
  if temperature > 0 and rng is None:
    raise ValueError(f"temperature={temperature} samples: pass rng=jax.random.key(...)")
  if max_new_tokens == 0:
    return prompt_tokens.astype(jnp.int32)
  rng = jax.random.key(0) if rng is None else rng
  return _generate(model, params, prompt_tokens.astype(jnp.int32), rng,
                   max_new_tokens=max_new_tokens, temperature=float(temperature), top_k=top_k)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "temperature", "top_k"))
def _generate(model, params, prompt, rng, *, max_new_tokens, temperature, top_k):
  B, T = prompt.shape
  state = model.init_state(B, T + max_new_tokens)
  logits, state = model.apply({"params": params}, prompt, state=state, return_state=True)
  first_key, rng = jax.random.split(rng)
  first = sample(logits[:, -1], first_key, temperature, top_k)
  rest, _ = decode(model, params, first, state, rng, max_new_tokens - 1, temperature, top_k)
  return jnp.concatenate([prompt, first[:, None], rest], axis=1)


def decode(model, params, token, state, rng, num_tokens: int, temperature: float = 0.0,
           top_k: int | None = None):
  """Feeds `token` [B] and then each sampled token back, `num_tokens` times, in one
  lax.scan. Returns (the sampled tokens [B, num_tokens], the final state)."""
  def step(carry, key):
    token, state = carry
    logits, state = model.apply({"params": params}, token[:, None], state=state,
                                return_state=True)
    nxt = sample(logits[:, 0], key, temperature, top_k)
    return (nxt, state), nxt

  (_, state), tokens = jax.lax.scan(step, (token, state), jax.random.split(rng, num_tokens))
  return tokens.T, state


def sample(logits, key, temperature: float, top_k: int | None):
  """Greedy for temperature 0, else a draw from softmax(logits / temperature) (top-k)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_k is not None:
    kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
