"""Accuracy of a model on a synthetic task at each test length, scaled to [chance, perfect].

  result = length_accuracy(logits_fn, task, range(40, 257), examples=32, seed=0)
  result["scaled_accuracy"], result["per_length"][64]["accuracy"]

`logits_fn(inputs [B, T] int32) -> logits [B, T, V]` is any causal model (e.g.
`lambda x: model.apply({"params": p}, x)` under jit). Examples are right-padded to a
multiple of `pad_to` tokens, so lengths share compiled shapes; a causal model's outputs at
the real positions do not depend on padding after them. Accuracy is per answer token
(the masked positions), as in Delétang et al.; each length's accuracy is scaled with the
task's chance level, 0 = chance and 1 = perfect, and `scaled_accuracy` is the mean over the
lengths (the xLSTM paper's measure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from xlstm_jax.tasks.base import Task, scaled_accuracy
from xlstm_jax.tasks.seeds import example_rng
from xlstm_jax.tasks.source import pad_example


def length_accuracy(logits_fn: Callable, task: Task, lengths: Iterable[int], examples: int = 32,
                    seed: int | np.random.SeedSequence = 0, pad_to: int = 64, progress: Callable | None = None) -> dict:
  """{"accuracy", "scaled_accuracy", "per_length": {L: {"accuracy", "scaled_accuracy"}}}.

  Example j of length L comes from generator tasks.seeds.example_rng(seed, L, j): the same
  on every call (`seed`: an int, or the run's test stream from tasks.seeds.split_stream).
  `progress(i, n)` is called after each length, e.g. to draw a progress bar.
  """
  lengths = list(lengths)
  if not lengths or examples < 1:
    raise ValueError(f"need at least one length and one example, got {len(lengths)} lengths "
                     f"and examples={examples}")
  per_length = {}
  for done, length in enumerate(lengths, start=1):
    exs = [task.example(example_rng(seed, length, j), length)
           for j in range(examples)]
    width = -(-max(len(e["inputs"]) for e in exs) // pad_to) * pad_to
    batch = {k: np.stack([pad_example(e, width)[k] for e in exs]) for k in exs[0]}
    predicted = np.asarray(logits_fn(batch["inputs"])).argmax(-1)
    hits = (predicted == batch["targets"])[batch["mask"]]
    acc = float(hits.mean())
    per_length[int(length)] = {
        "accuracy": acc, "scaled_accuracy": scaled_accuracy(acc, task.chance_accuracy(length))}
    if progress is not None:
      progress(done, len(lengths))
  return {"accuracy": float(np.mean([r["accuracy"] for r in per_length.values()])),
          "scaled_accuracy": float(np.mean([r["scaled_accuracy"]
                                            for r in per_length.values()])),
          "per_length": per_length}
