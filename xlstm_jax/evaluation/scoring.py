"""Per-token log-probabilities of many token sequences, batched and jitted, of any length.

  scores = token_logprobs(model, params, [[eos, 5, 7, 9], [eos, 3]], batch_size=8)
  scores[0].logprobs[i] = log p(seq[i + 1] | seq[:i + 1]);  scores[0].greedy[i]: argmax hit
Sequences are sorted by length (longest first, as lm-evaluation-harness does), grouped into
batches and right-padded to a bucket length (a power of two up to `window`, then a multiple
of it), so few shapes compile; right padding never reaches the scored positions of a causal
model. A sequence longer than `window` is run window after window with the recurrent state
(or KV cache) carried across: every token is scored with its whole context, none truncated,
and memory stays that of one window for the xLSTM.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class TokenScores:
  """Scores of one sequence of n tokens: arrays of n - 1 (the first token is the context)."""
  logprobs: np.ndarray  # float64 log p(token i+1 | tokens <= i)
  greedy: np.ndarray    # bool: token i+1 is the argmax of the model's prediction


def bucket_length(n: int, window: int) -> int:
  """The padded length of a sequence of n tokens: a power of two >= 16 up to `window`, then
  a multiple of `window`."""
  if n <= window:
    return min(max(16, 1 << (n - 1).bit_length()), window)
  return -(-n // window) * window


@functools.lru_cache(maxsize=8)
def _window_fn(model) -> Callable:
  """jitted (params, inputs [B, W], targets [B, W], state) -> (log p of the targets [B, W],
  argmax == target [B, W], state after the window)."""
  @jax.jit
  def run(params, inputs, targets, state):
    logits, state = model.apply({"params": params}, inputs, state=state, return_state=True)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return picked, jnp.argmax(logits, axis=-1) == targets, state
  return run


def token_logprobs(model, params, sequences: Sequence[Sequence[int]], batch_size: int = 8,
                   window: int = 2048, progress: Callable[[int, int], None] | None = None
                   ) -> list[TokenScores]:
  """TokenScores of each sequence (>= 2 tokens each), in the order given.

  `progress(done, total)` is called after each batch (sequences scored so far).
  """
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
  if not isinstance(window, int) or window < 1:
    raise ValueError(f"window={window!r} must be an int >= 1")
  seqs = [np.asarray(s, np.int32) for s in sequences]
  if short := [i for i, s in enumerate(seqs) if s.ndim != 1 or len(s) < 2]:
    raise ValueError(f"sequences {short[:5]} have fewer than 2 tokens (a context token and a "
                     "scored one)")
  vocab = model.cfg.vocab_size
  if bad := [i for i, s in enumerate(seqs) if s.min() < 0 or s.max() >= vocab]:
    raise ValueError(f"sequences {bad[:5]} hold ids outside the model's vocab_size={vocab}")
  order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
  run = _window_fn(model)
  out: list[TokenScores | None] = [None] * len(seqs)
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    length = bucket_length(len(seqs[idx[0]]) - 1, window)
    inputs = np.zeros((batch_size, length), np.int32)  # padded rows keep the batch's shape
    targets = np.zeros((batch_size, length), np.int32)
    for row, i in enumerate(idx):
      n = len(seqs[i]) - 1
      inputs[row, :n], targets[row, :n] = seqs[i][:-1], seqs[i][1:]
    state = model.init_state(batch_size, length)
    logps, hits = [], []
    for w in range(0, length, min(window, length)):
      sl = slice(w, w + min(window, length))
      logp, hit, state = run(params, jnp.asarray(inputs[:, sl]), jnp.asarray(targets[:, sl]),
                             state)
      logps.append(np.asarray(logp, np.float64))
      hits.append(np.asarray(hit))
    logp, hit = np.concatenate(logps, axis=1), np.concatenate(hits, axis=1)
    for row, i in enumerate(idx):
      n = len(seqs[i]) - 1
      out[i] = TokenScores(logp[row, :n], hit[row, :n])
    if progress is not None:
      progress(min(start + batch_size, len(seqs)), len(seqs))
  return out
