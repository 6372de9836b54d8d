"""Text samples of a language model: prompts in, decoded continuations out.

  samples = text_samples(model, params, tokenizer, ["The ", "def "], max_new_tokens=64)
  samples[0]["prompt"], samples[0]["completion"]
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from xlstm_jax.generation import generate

DEFAULT_PROMPTS = ("The ", "A list ", "import ")


def text_samples(model, params, tokenizer, prompts: Sequence[str] = DEFAULT_PROMPTS,
                 max_new_tokens: int = 64, temperature: float = 0.0,
                 seed: int = 0) -> list[dict]:
  """[{"prompt", "completion"}] for each prompt, by `generation.generate`.

  Each prompt is encoded after an EOS, as a document follows one in the packed training
  data (so "" asks for the start of a document). The completion stops before the first EOS
  the model emits; ids outside the tokenizer's vocabulary (a padded model vocabulary) are
  dropped. temperature 0 is greedy; otherwise prompt j samples with key (seed, j).
  """
  if isinstance(prompts, str):
    raise ValueError(f"prompts={prompts!r} must be a sequence of strings, not one string")
  if not prompts:
    raise ValueError("prompts is empty: give at least one prompt")
  out = []
  for j, prompt in enumerate(prompts):
    ids = [tokenizer.eos_id, *tokenizer.encode(prompt)]
    rng = jax.random.fold_in(jax.random.key(seed), j) if temperature > 0 else None
    tokens = generate(model, params, np.asarray([ids], np.int32), max_new_tokens,
                      temperature=temperature, rng=rng)
    new = np.asarray(tokens)[0, len(ids):].tolist()
    if tokenizer.eos_id in new:
      new = new[:new.index(tokenizer.eos_id)]
    new = [t for t in new if t < tokenizer.vocab_size]
    out.append({"prompt": prompt, "completion": tokenizer.decode(new)})
  return out
