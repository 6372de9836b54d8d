"""Length extrapolation: perplexity of a model trained at context C on sequences of f*C tokens.

  stream = document_stream([tok.encode(d) for d in val_docs], tok.eos_id)
  result = extrapolation_curve(model, params, stream, context=128, factors=(1, 2, 4, 8, 16))
  result["factors"][8]["perplexity"], result["factors"][8]["bucket_perplexity"][-1]

The xLSTM paper's experiment (Sec. 4.2): a model trained on sequences of C tokens reads
sequences of f*C tokens; perplexity is reported per position bucket [0, C), [C, 2C), ...
Every sequence is fed in windows of C tokens and the model's state (the recurrent state of
the xLSTM blocks, the KV cache for llama) is carried from one window to the next, so the
xLSTM's memory does not grow with the length; llama's cache holds the whole sequence and its
positions continue across windows (the cache stores the next position).

Every factor scores the same target tokens: the stream is cut into `n` rows of F*C + 1
tokens (F the largest factor), and factor f reads each row as F/f sequences of f*C + 1
tokens, restarting from the empty state at each one. The overall perplexities of different
factors therefore differ only by the context the model had, not by the text (factor 1 over
the packed validation rows is eval.py's perplexity). A bucket covers 1/f of the scored
tokens, so bucket values at large factors are noisier than the overall ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_FACTORS = (1, 2, 4, 8, 16)


def document_stream(token_docs: Iterable[Sequence[int]], eos_id: int) -> np.ndarray:
  """The token stream doc0 EOS doc1 EOS ... (int32 [T]), as `data.pack` cuts it."""
  parts = [np.asarray([*doc, eos_id], np.int32) for doc in token_docs]
  return np.concatenate(parts) if parts else np.zeros(0, np.int32)


def packed_stream(source, max_tokens: int | None = None) -> np.ndarray:
  """The token stream behind a packed source (`PackedArrays`, a prepared split's
  `PackedRecords`): rows are windows of seq_len + 1 tokens with stride seq_len, so the
  stream is every row's inputs plus the last row's final target. Reads only the rows needed
  for `max_tokens` tokens (None: all of them)."""
  parts, count = [], 0
  for i in range(len(source)):
    row = source[i]
    parts.append(np.asarray(row["inputs"], np.int32))
    count += len(parts[-1])
    if max_tokens is not None and count + 1 >= max_tokens:
      break
  if not parts:
    return np.zeros(0, np.int32)
  return np.concatenate([*parts, np.asarray(row["targets"][-1:], np.int32)])


@functools.partial(jax.jit, static_argnames=("model",))
def _window_losses(model, params, inputs, targets, state):
  """Next-token cross-entropy [B, T] of one window and the state after it."""
  logits, state = model.apply({"params": params}, inputs, state=state, return_state=True)
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0], state


def token_losses(model, params, tokens, window: int, batch_size: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
  """Cross-entropy of predicting tokens[:, t + 1] from tokens[:, :t + 1]: float32 [N, L - 1].

  Each row of `tokens` (int [N, L]) starts from the model's empty state and is fed in
  windows of `window` tokens, carrying the state between them (one compilation per window
  shape). Rows go `batch_size` at a time (None: all at once); a short last batch is padded
  with zero rows so it reuses the compiled shapes. `progress(done, total)` is called after
  each window of each batch. `model` is a LanguageModel or any hashable object with its
  apply(variables, tokens, state=, return_state=) and init_state(batch, max_len).
  """
  tokens = np.asarray(tokens)
  if (tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer) or tokens.shape[0] < 1
      or tokens.shape[1] < 2):
    raise ValueError(f"tokens must be int [N, L] with N >= 1 and L >= 2, got "
                     f"{tokens.dtype}{list(tokens.shape)}")
  if not isinstance(window, int) or window < 1:
    raise ValueError(f"window={window!r} must be a positive int")
  if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
    raise ValueError(f"batch_size={batch_size!r} must be None or a positive int")
  tokens = tokens.astype(np.int32)
  N, T = tokens.shape[0], tokens.shape[1] - 1
  B = N if batch_size is None else min(batch_size, N)
  starts = range(0, T, window)
  total, done = -(-N // B) * len(starts), 0
  out = np.empty((N, T), np.float32)
  for first in range(0, N, B):
    rows = tokens[first:first + B]
    n = len(rows)
    rows = np.concatenate([rows, np.zeros((B - n, T + 1), np.int32)]) if n < B else rows
    state = model.init_state(B, T)  # max_len: llama's KV cache holds the whole row
    for s in starts:
      e = min(s + window, T)
      losses, state = _window_losses(model, params, rows[:, s:e], rows[:, s + 1:e + 1], state)
      out[first:first + n, s:e] = np.asarray(losses)[:n]
      done += 1
      if progress is not None:
        progress(done, total)
  return out


def check_factors(factors) -> list[int]:
  """The sorted distinct factors with 1 added (the baseline); ValueError unless they are
  positive ints that divide the largest one."""
  factors = list(factors)
  bad = [f for f in factors if not isinstance(f, (int, np.integer)) or f < 1]
  if not factors or bad:
    raise ValueError(f"factors={factors!r} must be positive ints (context multiples), "
                     f"e.g. (1, 2, 4, 8, 16)")
  largest = max(factors)
  uneven = [f for f in factors if largest % f]
  if uneven:
    raise ValueError(f"factors {uneven} do not divide the largest factor {largest}: every "
                     "factor reads the rows of the largest one, cut into equal sequences")
  return sorted({1, *map(int, factors)})  # 1 is the baseline of the ratios


def _perplexity(mean_loss: float) -> float:
  """exp(loss), capped at exp(50) as in training.evaluate (a diverged model stays finite)."""
  return math.exp(min(float(mean_loss), 50.0))


def extrapolation_curve(model, params, stream, context: int,
                        factors: Iterable[int] = DEFAULT_FACTORS,
                        max_sequences: int | None = None, batch_size: int = 8,
                        tolerance: float = 0.10,
                        progress: Callable[[int, int], None] | None = None) -> dict:
  """Perplexity at `factors` times the training `context`, overall and per bucket of
  `context` positions, on a 1-D token `stream` (e.g. `document_stream` of validation docs).

  `max_sequences` caps the rows of the largest factor F (None: as many as the stream
  holds); factor f scores the same tokens in F/f times as many sequences. Factor 1 is always
  evaluated: it is the baseline. Returns, JSON-ready (int keys become strings in JSON):
    {"context": C, "tokens": scored tokens per factor, "tolerance": tolerance,
     "factors": {f: {"perplexity", "bucket_perplexity": [f values], "sequences",
                     "ratio_to_1x", "last_bucket_ratio_to_1x"}},
     "max_factor_within": {"overall": F1, "last_bucket": F2}}
  where the ratios divide the factor's overall / last-bucket perplexity by the 1x
  perplexity, and `max_factor_within` is the largest factor up to which every ratio stays
  <= 1 + tolerance (see `max_factor_within`).
  """
  if not isinstance(context, int) or context < 1:
    raise ValueError(f"context={context!r} must be a positive int (the training seq_len)")
  if max_sequences is not None and (not isinstance(max_sequences, int) or max_sequences < 1):
    raise ValueError(f"max_sequences={max_sequences!r} must be None or a positive int")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size={batch_size!r} must be a positive int")
  if not tolerance >= 0:   # checked before the windows run, not after
    raise ValueError(f"tolerance={tolerance!r} must be >= 0 (0.1 for within 10%)")
  factors = check_factors(factors)
  stream = np.asarray(stream)
  if stream.ndim != 1 or not np.issubdtype(stream.dtype, np.integer):
    raise ValueError(f"stream must be a 1-D int token array, got {stream.dtype}"
                     f"{list(stream.shape)}")
  row = factors[-1] * context
  rows = (len(stream) - 1) // row
  if rows < 1:
    raise ValueError(f"the stream has {len(stream)} tokens, too few for one sequence of "
                     f"{factors[-1]} x context {context} (+1) = {row + 1} tokens; use smaller "
                     "factors or a longer validation text")
  rows = rows if max_sequences is None else min(rows, max_sequences)
  sequences = {f: rows * factors[-1] // f for f in factors}
  windows = {f: -(-sequences[f] // batch_size) * f for f in factors}  # batches x windows
  offset, total = 0, sum(windows.values())
  per_factor = {}
  for f in factors:
    length = f * context
    starts = np.arange(sequences[f]) * length
    seqs = stream[starts[:, None] + np.arange(length + 1)[None, :]]
    report = None if progress is None else (
        lambda done, _, offset=offset: progress(offset + done, total))
    losses = token_losses(model, params, seqs, context, batch_size, report).astype(np.float64)
    offset += windows[f]
    buckets = losses.reshape(len(seqs), f, context).mean(axis=(0, 2))
    per_factor[f] = {"perplexity": _perplexity(losses.mean()),
                     "bucket_perplexity": [_perplexity(b) for b in buckets],
                     "sequences": len(seqs)}
  base = per_factor[1]["perplexity"]
  for r in per_factor.values():
    r["ratio_to_1x"] = r["perplexity"] / base
    r["last_bucket_ratio_to_1x"] = r["bucket_perplexity"][-1] / base
  result = {"context": context, "tokens": rows * row, "tolerance": tolerance,
            "factors": per_factor}
  result["max_factor_within"] = {
      "overall": max_factor_within(result, tolerance, "ratio_to_1x"),
      "last_bucket": max_factor_within(result, tolerance, "last_bucket_ratio_to_1x")}
  return result


def max_factor_within(result: dict, tolerance: float = 0.10, key: str = "ratio_to_1x") -> int:
  """The largest factor F of an `extrapolation_curve` result such that every factor <= F
  has `key` (ratio_to_1x or last_bucket_ratio_to_1x) <= 1 + tolerance: "perplexity stays
  within 10% of the 1x perplexity out to F*C" holds for tolerance 0.1. Reads int or string
  factor keys (a result loaded from JSON). 1 is always within (its ratio is 1)."""
  if key not in ("ratio_to_1x", "last_bucket_ratio_to_1x"):
    raise ValueError(f"key={key!r} must be 'ratio_to_1x' or 'last_bucket_ratio_to_1x'")
  if not tolerance >= 0:
    raise ValueError(f"tolerance={tolerance!r} must be >= 0 (0.1 for within 10%)")
  best = 1
  for f, r in sorted(result["factors"].items(), key=lambda item: int(item[0])):
    if int(f) > 1 and r[key] > 1 + tolerance:
      break
    best = int(f)
  return best
