"""Command line generation from a train.py workdir or a Hugging Face xLSTM directory.

  python -m xlstm_jax.generate --model=runs/default --prompt='The ' --max_new_tokens=200
  python -m xlstm_jax.generate --model=xLSTM-7b/ --prompt='Hello' --temperature=0.7 --top_p=0.9
  python -m xlstm_jax.generate --model=DIR --tokens=5,7,9       # token ids in and out
The continuation is printed as it is computed and stops at the model's EOS (the tokenizer's, or
the HF config's eos_token_id; --eos_id overrides). `python -m xlstm_jax.generate` runs
`main` of this module (a module named xlstm_jax.generate would shadow the function when
imported, so the code lives here).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax
import numpy as np

from xlstm_jax.generation import stream
from xlstm_jax.training.pretrained import load_pretrained


def parse_args(argv: Sequence[str] | None):
  p = argparse.ArgumentParser(
      prog="python -m xlstm_jax.generate",
      description="Generate text (or token ids) from a train.py workdir or a Hugging Face "
      "xLSTM directory, printing each token as it is computed. Greedy unless --temperature > 0.")
  p.add_argument("--model", required=True, help="a train.py workdir (config.json + "
                 "checkpoints/) or a save_pretrained xLSTM directory (config.json + safetensors)")
  p.add_argument("--prompt", action="append", help="prompt text (repeatable: one after the "
                 "other); encoded with the tokenizer that came with the weights")
  p.add_argument("--tokens", help="the prompt as comma-separated token ids instead of text; "
                 "the ids of the continuation are printed")
  p.add_argument("--tokenizer", help="a tokenizer for weights that came without one: 'byte' "
                 "or a tokenizer.json path")
  p.add_argument("--max_new_tokens", type=int, default=128, help="at most this many new tokens")
  p.add_argument("--temperature", type=float, default=0.0, help="0: greedy; else sample from "
                 "softmax(logits / temperature)")
  p.add_argument("--top_k", type=int, help="sample among the k most likely tokens")
  p.add_argument("--top_p", type=float, help="sample within the nucleus of probability top_p")
  p.add_argument("--seed", type=int, default=0, help="sampling seed")
  p.add_argument("--eos_id", type=int, action="append", help="end-of-sequence id(s), "
                 "replacing the ones that came with the weights (repeatable)")
  p.add_argument("--no_eos", action="store_true", help="never stop before --max_new_tokens")
  p.add_argument("--no_bos", action="store_true", help="workdir models: do not start the "
                 "prompt after an EOS (training packs each document after one)")
  return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, out=sys.stdout) -> list[list[int]]:
  """Runs the command line; returns the generated ids of each prompt."""
  args = parse_args(argv)
  if (args.prompt is None) == (args.tokens is None):
    raise SystemExit("give exactly one of --prompt (text) or --tokens (ids)")
  pre = load_pretrained(args.model, tokenizer=args.tokenizer)
  tok = pre.tokenizer
  if args.prompt is not None and tok is None:
    raise SystemExit(f"{args.model} came without a tokenizer: pass --tokenizer=byte (or a "
                     "tokenizer.json), or give --tokens")
  eos = () if args.no_eos else tuple(args.eos_id or pre.eos_ids)
  if args.tokens is not None:
    try:
      prompts = [[int(t) for t in args.tokens.split(",")]]
    except ValueError:
      raise SystemExit(f"--tokens={args.tokens!r} must be comma-separated ints") from None
  else:
    start = [] if (args.no_bos or pre.kind == "hf" or tok is None) else [tok.eos_id]
    prompts = [start + tok.encode(p) for p in args.prompt]
  results = []
  for j, ids in enumerate(prompts):
    if args.prompt is not None:
      out.write(args.prompt[j])
    rng = jax.random.fold_in(jax.random.key(args.seed), j) if args.temperature > 0 else None
    new, shown = [], ""
    for token in stream(pre.model, pre.params, np.asarray([ids], np.int32),
                        args.max_new_tokens, args.temperature, args.top_k, rng,
                        top_p=args.top_p, eos_id=eos or None, pad_id=pre.pad_id):
      t = int(token[0])
      new.append(t)
      if t in eos:
        break
      if args.tokens is not None:
        out.write(f"{',' if len(new) > 1 else ' -> '}{t}")
      else:
        text = tok.decode([i for i in new if i < tok.vocab_size and i not in eos])
        if not text.endswith("\ufffd"):  # hold back an incomplete UTF-8 character
          out.write(text[len(shown):])
          shown = text
      out.flush()
    if args.prompt is not None:  # whatever an incomplete character held back
      out.write(tok.decode([i for i in new if i < tok.vocab_size and i not in eos])[len(shown):])
    out.write("\n")
    results.append(new)
  return results


if __name__ == "__main__":
  main()
