"""Autoregressive generation as Hugging Face's `generate` does it: one prefill, then a jitted
loop of single-token steps that stops each sequence at its end-of-sequence id.

  out = generate(model, params, [[5, 7, 9], [3, 4]], max_new_tokens=16, eos_id=2, pad_id=1)
  out[b, :L_b] is prompt b; out[b, L_b:L_b + 16] its continuation, the EOS included and pad_id
  after it (and after L_b + 16, so rows of ragged prompts line up as one array).

Ragged prompts: the longest common prefix length `min(L_b)` is prefilled with the model's
sequence form; the remaining prompt tokens of the longer prompts are fed through the step
form in the same loop that samples the shorter ones' continuations (a row still inside its
prompt takes its prompt token instead of the sampled one). No sequence ever sees padding, so
a row's tokens equal what it gets alone. For the xLSTM the state has a fixed size: memory and
per-token cost do not grow with context.

Sampling follows transformers' order: logits / temperature, then top-k, then top-p (nucleus:
the smallest set of most likely tokens whose probability reaches top_p). temperature 0 is
greedy. The draw at position p uses key fold_in(rng, p), so `stream` yields the same tokens as
`generate`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Sampling:
  """How the next token is chosen (static under jit). temperature 0: greedy."""
  temperature: float = 0.0
  top_k: int | None = None
  top_p: float | None = None
  eos_ids: tuple[int, ...] = ()  # a sequence ends after emitting any of these
  pad_id: int = 0                # what follows a sequence's end
  max_new_tokens: int = 1


def _as_batch(prompt_tokens, prompt_lengths) -> tuple[np.ndarray, np.ndarray]:
  """(right-padded int32 [B, T_max], lengths int32 [B]) of an array or a list of sequences."""
  if isinstance(prompt_tokens, (list, tuple)) and prompt_tokens and not np.isscalar(
      prompt_tokens[0]) and len({len(p) for p in prompt_tokens}) > 1:
    if prompt_lengths is not None:
      raise ValueError("prompt_lengths is for a rectangular array; ragged prompts carry their "
                       "own lengths")
    rows = [np.asarray(p) if len(p) else np.zeros(0, np.int32) for p in prompt_tokens]
    if any(r.ndim != 1 or not np.issubdtype(r.dtype, np.integer) for r in rows):
      raise ValueError("ragged prompt_tokens must be a list of int sequences")
    lengths = np.asarray([len(r) for r in rows], np.int32)
    batch = np.zeros((len(rows), int(lengths.max())), np.int32)
    for b, r in enumerate(rows):
      batch[b, :len(r)] = r
  else:
    batch = np.asarray(prompt_tokens)
    if batch.ndim != 2 or not np.issubdtype(batch.dtype, np.integer):
      raise ValueError(f"prompt_tokens must be int [B, T], got {batch.dtype}{list(batch.shape)}")
    lengths = (np.full(batch.shape[0], batch.shape[1], np.int32) if prompt_lengths is None
               else np.asarray(prompt_lengths, np.int32))
    if lengths.shape != (batch.shape[0],) or (lengths > batch.shape[1]).any():
      raise ValueError(f"prompt_lengths={lengths.tolist()} must give one length <= "
                       f"{batch.shape[1]} per row of the {batch.shape[0]} prompts")
  if batch.shape[0] == 0 or lengths.min() < 1:
    raise ValueError(f"every prompt needs >= 1 token; got lengths {lengths.tolist()} "
                     f"(prompt_tokens.shape={batch.shape})")
  return batch.astype(np.int32), lengths


def _sampling(max_new_tokens, temperature, top_k, top_p, rng, eos_id, pad_id) -> Sampling:
  if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
    raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 0")
  if not temperature >= 0:
    raise ValueError(f"temperature={temperature!r} must be >= 0")
  if top_k is not None and not (isinstance(top_k, int) and top_k > 0):
    raise ValueError(f"top_k={top_k!r} must be None or a positive int")
  if top_p is not None and not 0 < top_p <= 1:
    raise ValueError(f"top_p={top_p!r} must be None or in (0, 1]")
  if temperature > 0 and rng is None:
    raise ValueError(f"temperature={temperature} samples: pass rng=jax.random.key(...)")
  eos = () if eos_id is None else tuple(int(e) for e in np.atleast_1d(eos_id))
  if pad_id is None:
    pad_id = eos[0] if eos else 0  # transformers also pads with the EOS when pad is unset
  return Sampling(float(temperature), top_k, None if top_p is None else float(top_p), eos,
                  int(pad_id), max_new_tokens)


def generate(model, params, prompt_tokens, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, rng: jax.Array | None = None, *,
             top_p: float | None = None, eos_id: int | Sequence[int] | None = None,
             pad_id: int | None = None, prompt_lengths=None,
             prefill_len: int | None = None) -> jax.Array:
  """Prompts + continuations, int32 [B, max(L_b) + max_new_tokens] (layout: module doc).

  prompt_tokens: int [B, T] (all of length T, or the first `prompt_lengths[b]` of row b), or a
  list of int sequences of different lengths. eos_id: an id or ids that end a sequence (None:
  never ends early); pad_id fills what follows (default: the first EOS id, else 0). The loop
  stops as soon as every sequence has ended. prefill_len (<= the shortest prompt; default: its
  length) is how many tokens the sequence form prefills: a fixed value saves recompiling
  for batches whose shortest prompt differs (the same tokens either way).
  """
  batch, lengths = _as_batch(prompt_tokens, prompt_lengths)
  cfg = _sampling(max_new_tokens, temperature, top_k, top_p, rng, eos_id, pad_id)
  if max_new_tokens == 0:
    return jnp.asarray(_padded(batch, lengths, cfg.pad_id))
  rng = jax.random.key(0) if rng is None else rng
  min_len = int(lengths.min()) if prefill_len is None else prefill_len
  if not (isinstance(min_len, int) and 1 <= min_len <= lengths.min()):
    raise ValueError(f"prefill_len={prefill_len!r} must be an int in [1, {lengths.min()}] "
                     "(the shortest prompt's length)")
  total = batch.shape[1] + max_new_tokens
  buf = np.full((batch.shape[0], total), cfg.pad_id, np.int32)
  buf[:, :batch.shape[1]] = _padded(batch, lengths, cfg.pad_id)
  return _generate(model, params, jnp.asarray(buf), jnp.asarray(lengths), rng,
                   min_len=min_len, cfg=cfg)


def _padded(batch: np.ndarray, lengths: np.ndarray, pad_id: int) -> np.ndarray:
  return np.where(np.arange(batch.shape[1]) < lengths[:, None], batch, pad_id).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("model", "min_len", "cfg"))
def _generate(model, params, buf, lengths, rng, *, min_len, cfg):
  B, total = buf.shape
  logits, state = _prefill(model, params, buf, min_len)

  def running(carry):
    pos, _, _, _, done = carry
    return (pos < total) & ~jnp.all(done | (pos >= lengths + cfg.max_new_tokens))

  def step(carry):
    pos, buf, logits, state, done = carry
    token, done = next_token(logits, jax.random.fold_in(rng, pos), buf[:, pos], pos, lengths,
                             done, cfg)
    buf = jax.lax.dynamic_update_slice(buf, token[:, None], (0, pos))
    logits, state = model.apply({"params": params}, token[:, None], state=state,
                                return_state=True)
    return pos + 1, buf, logits[:, 0], state, done

  carry = (jnp.int32(min_len), buf, logits, state, jnp.zeros((B,), bool))
  return jax.lax.while_loop(running, step, carry)[1]


def _prefill(model, params, buf, min_len: int):
  """(logits of the next token [B, V], state) after the first min_len tokens of every row."""
  state = model.init_state(buf.shape[0], buf.shape[1])
  logits, state = model.apply({"params": params}, buf[:, :min_len], state=state,
                              return_state=True)
  return logits[:, -1], state


def next_token(logits, key, prompt_token, pos, lengths, done, cfg: Sampling):
  """(token at position `pos` [B], updated done [B]): the prompt's token while a row is inside
  its prompt, pad once it has ended (EOS emitted, or max_new_tokens reached), else a draw."""
  drawn = sample(logits, key, cfg.temperature, cfg.top_k, cfg.top_p)
  in_prompt = pos < lengths
  over = done | (pos >= lengths + cfg.max_new_tokens)
  token = jnp.where(in_prompt, prompt_token, jnp.where(over, cfg.pad_id, drawn))
  is_eos = jnp.isin(drawn, jnp.asarray(cfg.eos_ids, jnp.int32)) if cfg.eos_ids else False
  return token, done | (~in_prompt & ~over & is_eos)


def sample(logits, key, temperature: float, top_k: int | None = None,
           top_p: float | None = None):
  """Greedy for temperature 0, else a draw from softmax(logits / temperature) restricted to
  the top_k most likely tokens, then to the top_p nucleus (transformers' order)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_k is not None:
    kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p is not None and top_p < 1.0:
    sorted_desc = -jnp.sort(-logits, axis=-1)
    probs = jax.nn.softmax(sorted_desc, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # probability mass ranked above each token
    keep = before < top_p                        # the most likely token is always kept
    cutoff = jnp.min(jnp.where(keep, sorted_desc, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def stream(model, params, prompt_tokens, max_new_tokens: int, temperature: float = 0.0,
           top_k: int | None = None, rng: jax.Array | None = None, *,
           top_p: float | None = None, eos_id: int | Sequence[int] | None = None,
           pad_id: int | None = None) -> Iterator[np.ndarray]:
  """Yields the new tokens of each step as they are computed: int32 [B] per step (pad_id for
  rows that have ended), stopping when every row has ended. Same arguments and the same tokens
  as `generate` (equal-length prompts only); for printing a continuation as it is written."""
  batch, lengths = _as_batch(prompt_tokens, None)
  if (lengths != batch.shape[1]).any():
    raise ValueError(f"stream takes prompts of one length; got lengths {lengths.tolist()} "
                     "(generate takes ragged prompts)")
  cfg = _sampling(max_new_tokens, temperature, top_k, top_p, rng, eos_id, pad_id)
  rng = jax.random.key(0) if rng is None else rng
  T = batch.shape[1]
  prefill = jax.jit(_prefill, static_argnames=("model", "min_len"))
  logits, state = prefill(model, params, jnp.zeros((batch.shape[0], T + max_new_tokens),
                                                   jnp.int32).at[:, :T].set(batch), min_len=T)
  one_step = _stream_step(model, cfg)
  done, lengths = jnp.zeros((batch.shape[0],), bool), jnp.asarray(lengths)
  for pos in range(T, T + max_new_tokens):
    token, done, logits, state = one_step(params, logits, state, rng, jnp.int32(pos), lengths,
                                          done)
    yield np.asarray(token)
    if bool(jnp.all(done)):
      return


@functools.lru_cache(maxsize=16)
def _stream_step(model, cfg: Sampling):
  """The jitted step of `stream`, one compilation per (model, sampling)."""
  @jax.jit
  def one_step(params, logits, state, rng, pos, lengths, done):
    token, done = next_token(logits, jax.random.fold_in(rng, pos), jnp.zeros_like(lengths),
                             pos, lengths, done, cfg)
    logits, state = model.apply({"params": params}, token[:, None], state=state,
                                return_state=True)
    return token, done, logits[:, 0], state
  return one_step
