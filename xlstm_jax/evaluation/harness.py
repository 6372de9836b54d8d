"""EleutherAI lm-evaluation-harness adapter: the model class `xlstm_jax` and its command line.

  python -m xlstm_jax.evaluation.harness --pretrained=runs/default \
      --tasks=lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande --batch_size=16
  python -m xlstm_jax.evaluation.harness --pretrained=xLSTM-7b/ --tasks=lambada_openai \
      --model_args=window=4096 --output_path=results/ --limit=100
Every flag but --pretrained goes to the harness's `lm-eval run` (see `lm-eval run --help`);
the harness prints its table and writes its JSON under --output_path (default
lm_eval_results/). In Python: `lm_eval.simple_evaluate(model="xlstm_jax",
model_args="pretrained=DIR")` once this module is imported.

Model args (`--model_args k=v,...`): pretrained (a train.py workdir or a Hugging Face xLSTM
directory, required), tokenizer (for weights that came without one: "byte" or a
tokenizer.json), window (tokens per forward call, default 2048: longer inputs carry the
recurrent state across windows, nothing is truncated), max_gen_toks (default 256), backend
(the mLSTM form, e.g. chunkwise). --batch_size is the harness's flag ("auto" means 8).

Requests: every sequence starts with the model's EOS/BOS id as the harness's prefix token
(training packs each document after an EOS). loglikelihood scores the continuation's tokens
(the tokenization of context + continuation, split where the context's tokens end);
loglikelihood_rolling scores every token of the text in one pass of the recurrence;
generate_until decodes greedily (or samples, with do_sample and temperature) until EOS or
max_gen_toks, then cuts at the first stop string.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import jax  # noqa: E402
import numpy as np  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402

from xlstm_jax.evaluation.scoring import bucket_length, token_logprobs  # noqa: E402
from xlstm_jax.generation import generate  # noqa: E402
from xlstm_jax.training.pretrained import Pretrained, load_pretrained  # noqa: E402

DEFAULT_OUTPUT = "lm_eval_results"


@register_model("xlstm_jax")
class XLSTMHarnessModel(LM):
  """lm-evaluation-harness LM over a workdir checkpoint or an HF xLSTM directory."""

  def __init__(self, pretrained, tokenizer: str | None = None, window: int = 2048,
               max_gen_toks: int = 256, backend: str | None = None, batch_size=8,
               max_batch_size=None, device=None, **unknown):
    """Loads the weights (`pretrained`: a directory, or an already loaded
    training.pretrained.Pretrained); `batch_size` "auto" or None means 8; `device` and
    `max_batch_size` (harness flags for torch models) are ignored: JAX places arrays on its
    default device."""
    super().__init__()
    if unknown:
      raise ValueError(f"unknown xlstm_jax model_args {sorted(unknown)}; known: pretrained, "
                       "tokenizer, window, max_gen_toks, backend")
    del max_batch_size, device
    overrides = {} if backend is None else {"backend": backend}
    self.pre = (pretrained if isinstance(pretrained, Pretrained)
                else load_pretrained(pretrained, tokenizer=tokenizer, **overrides))
    if self.pre.tokenizer is None:
      raise ValueError(f"{pretrained} came without a tokenizer: add tokenizer=byte (or a "
                       "tokenizer.json path) to --model_args")
    if not self.pre.eos_ids:
      raise ValueError(f"{pretrained} has no EOS id (tokenizer or config eos_token_id): the "
                       "harness needs one as the prefix token and generation stop")
    self.tok = self.pre.tokenizer
    self.batch_size = 8 if batch_size in (None, "auto") or str(batch_size).startswith("auto") \
        else int(batch_size)
    self.window, self.max_gen_toks = int(window), int(max_gen_toks)
    if self.batch_size < 1 or self.window < 1 or self.max_gen_toks < 1:
      raise ValueError(f"batch_size={self.batch_size}, window={self.window} and "
                       f"max_gen_toks={self.max_gen_toks} must be >= 1")

  @property
  def eot_token_id(self) -> int:
    """The id that ends a document (the prefix token of every request)."""
    return self.pre.eos_ids[0]

  @property
  def prefix_token_id(self) -> int:
    return self.eot_token_id

  def encode(self, text: str) -> list[int]:
    return self.tok.encode(text)

  def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids incl. the prefix token, continuation ids): context + continuation encoded
    together, split where the context's tokens end (trailing context spaces move over, as the
    harness's HF model does, so BPE merges across the boundary are kept)."""
    spaces = len(context) - len(context.rstrip(" "))
    if spaces:
      context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = self.encode(context + continuation)
    ctx = self.encode(context)
    if whole[:len(ctx)] != ctx:  # a merge across the boundary: score the continuation alone
      whole = ctx + self.encode(continuation)
    return [self.prefix_token_id, *ctx], whole[len(ctx):]

  def _score(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
    """(sum of the continuation's token log-probs, every token greedy) per (context, cont)."""
    if empty := [i for i, (_, cont) in enumerate(pairs) if not cont]:
      raise ValueError(f"requests {empty[:5]} have an empty continuation to score")
    scores = token_logprobs(self.pre.model, self.pre.params, [c + k for c, k in pairs],
                            self.batch_size, self.window)
    out = []
    for (_, cont), s in zip(pairs, scores):
      n = len(cont)
      out.append((float(s.logprobs[-n:].sum()), bool(s.greedy[-n:].all())))
    return out

  def loglikelihood(self, requests) -> list[tuple[float, bool]]:
    """log p(continuation | context) and whether greedy decoding produces it."""
    results = self._score([self._pair(*r.args) for r in requests])
    for r, res in zip(requests, results):
      self.cache_hook.add_partial("loglikelihood", r.args, res)
    return results

  def loglikelihood_rolling(self, requests) -> list[float]:
    """log p(text | prefix token), every token scored once with its whole context."""
    results = [lp for lp, _ in self._score(
        [([self.prefix_token_id], self.encode(r.args[0])) for r in requests])]
    for r, res in zip(requests, results):
      self.cache_hook.add_partial("loglikelihood_rolling", r.args, res)
    return results

  def generate_until(self, requests) -> list[str]:
    """The continuation of each context up to its first stop string (gen_kwargs "until"),
    EOS or max_gen_toks, batched by identical gen_kwargs and similar prompt lengths."""
    results: list[str | None] = [None] * len(requests)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
      groups.setdefault(repr(sorted(r.args[1].items())), []).append(i)
    for idx in groups.values():
      kwargs = dict(requests[idx[0]].args[1])
      until = kwargs.pop("until", None) or []
      until = [until] if isinstance(until, str) else list(until)
      max_new = int(kwargs.pop("max_gen_toks", self.max_gen_toks))
      do_sample = kwargs.pop("do_sample", False)
      temperature = float(kwargs.pop("temperature", 0.0)) if do_sample else 0.0
      seed = int(kwargs.pop("seed", 0))
      kwargs.pop("temperature", None)
      if kwargs:
        raise ValueError(f"generate_until: unsupported gen_kwargs {sorted(kwargs)} (supported: "
                         "until, max_gen_toks, do_sample, temperature, seed)")
      prompts = {i: [self.prefix_token_id, *self.encode(requests[i].args[0])] for i in idx}
      order = sorted(idx, key=lambda i: -len(prompts[i]))
      for start in range(0, len(order), self.batch_size):
        chunk = order[start:start + self.batch_size]
        for i, text in zip(chunk, self._generate([prompts[i] for i in chunk], max_new,
                                                 temperature, seed + start)):
          results[i] = cut_at_stop(text, until)
          self.cache_hook.add_partial("generate_until", requests[i].args, results[i])
    return results

  def _generate(self, prompts: list[list[int]], max_new: int, temperature: float,
                seed: int) -> list[str]:
    """Decoded continuations (up to EOS) of a batch of prompts of any lengths."""
    lengths = [len(p) for p in prompts]
    T = bucket_length(max(lengths), 1 << 30)
    batch = np.zeros((self.batch_size, T), np.int32)  # padded rows keep one compiled shape
    lens = np.full(self.batch_size, min(lengths), np.int32)
    for b, p in enumerate(prompts):
      batch[b, :len(p)], lens[b] = p, len(p)
    prefill = 1 << (min(lengths).bit_length() - 1)  # a power of two <= the shortest prompt
    out = np.asarray(generate(
        self.pre.model, self.pre.params, batch, max_new, temperature,
        rng=jax.random.key(seed) if temperature > 0 else None, eos_id=self.pre.eos_ids,
        pad_id=self.pre.pad_id, prompt_lengths=lens, prefill_len=prefill))
    texts = []
    for b, n in enumerate(lengths):
      new = out[b, n:n + max_new].tolist()
      ends = [k for k, t in enumerate(new) if t in self.pre.eos_ids]
      new = new[:ends[0]] if ends else new
      texts.append(self.tok.decode([t for t in new if t < self.tok.vocab_size]))
    return texts


def cut_at_stop(text: str, until: Sequence[str]) -> str:
  """`text` up to (not including) the earliest occurrence of any stop string."""
  cut = len(text)
  for stop in until:
    if stop and (k := text.find(stop)) != -1:
      cut = min(cut, k)
  return text[:cut]


def harness_argv(argv: Sequence[str]) -> list[str]:
  """`lm-eval run` arguments for our flags: --pretrained=DIR becomes --model xlstm_jax
  --model_args pretrained=DIR (merged with any --model_args given); --output_path defaults to
  lm_eval_results/."""
  args, pretrained, model_args = [], None, []
  it = iter(argv)
  for a in it:
    name, eq, value = a.partition("=")
    if name in ("--pretrained", "--model_args", "--model"):
      value = value if eq else next(it, None)
      if value is None:
        raise SystemExit(f"{name} needs a value")
      if name == "--pretrained":
        pretrained = value
      elif name == "--model_args":
        model_args.append(value)
      elif value != "xlstm_jax":
        raise SystemExit(f"--model={value!r}: this command runs the xlstm_jax model only")
    else:
      args.append(a)
  if pretrained is None and not any("pretrained=" in m for m in model_args):
    raise SystemExit("give --pretrained=DIR (a train.py workdir or a Hugging Face xLSTM "
                     "directory); see --help")
  margs = ",".join(([f"pretrained={pretrained}"] if pretrained else []) + model_args)
  if not any(a == "--output_path" or a.startswith("--output_path=") or a == "-o"
             for a in args):
    args.append(f"--output_path={DEFAULT_OUTPUT}")
  return ["run", "--model", "xlstm_jax", "--model_args", margs, *args]


def main(argv: Sequence[str] | None = None) -> None:
  """Runs lm-evaluation-harness's CLI with the xlstm_jax model registered."""
  from lm_eval.__main__ import cli_evaluate  # noqa: PLC0415 (the CLI parses sys.argv)
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv in ([], ["-h"], ["--help"]):
    print(__doc__)
    print("The harness's own flags (lm-eval run --help) follow.\n")
    argv = ["run", "--help"]
  else:
    argv = harness_argv(argv)
  saved = sys.argv
  sys.argv = ["lm-eval", *argv]
  try:
    cli_evaluate()
  finally:
    sys.argv = saved


if __name__ == "__main__":
  main()
