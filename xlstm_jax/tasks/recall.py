"""Recall tasks: multi-query associative recall (MQAR) and revision of a stored item.

Both follow the `Task` interface of `base.py`. MQAR is the Zoology task (Arora et al. 2023)
used in the xLSTM paper (Sec. 4.1, App. B.2); revision is the paper's motivation for
exponential gating: the model must overwrite what it stored when a more important item
comes along.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from xlstm_jax.tasks.base import PAD


def _example(inputs, targets, mask) -> dict[str, np.ndarray]:
  return {"inputs": np.asarray(inputs, np.int32), "targets": np.asarray(targets, np.int32),
          "mask": np.asarray(mask, np.bool_)}


@dataclasses.dataclass(frozen=True)
class MQAR:
  """Multi-query associative recall: read key-value pairs, then answer queries for keys.

  Vocabulary: 0 = PAD, 1 = FILL (gap token), 2 .. 2+num_keys-1 = keys,
  2+num_keys .. 2+num_keys+num_values-1 = values.

  An example of context length `length` (n = length tokens):

    k_a v_a k_b v_b ... (num_pairs pairs)  FILL .. k_b .. FILL .. k_a .. FILL

  The pairs come first, with distinct keys and values drawn uniformly (with replacement).
  The remaining `length - 2*num_pairs` positions hold `num_queries` queries (default:
  every key once) at positions sampled uniformly without replacement, in random key
  order; the gaps hold FILL (or, with `random_fill`, uniformly random *value* tokens,
  never keys, so every key occurrence after the pairs is a query). Zoology places
  queries by a power law and fills with random tokens; uniform positions keep the
  difficulty independent of where a query lands. At a query position the target is the
  key's value and mask is True; everywhere else target is PAD and mask False.
  """

  num_pairs: int = 8          # key-value pairs at the start of the context
  num_keys: int = 64          # size of the key range (>= num_pairs)
  num_values: int = 64        # size of the value range (chance = 1 / num_values)
  num_queries: int | None = None  # queries per example; None = every key once
  random_fill: bool = False   # fill gaps with random value tokens instead of FILL

  name: ClassVar[str] = "mqar"
  FILL: ClassVar[int] = 1

  def __post_init__(self):
    if self.num_pairs < 1:
      raise ValueError(f"MQAR needs num_pairs >= 1, got num_pairs={self.num_pairs}")
    if self.num_pairs > self.num_keys:
      raise ValueError(f"MQAR keys are distinct: num_pairs={self.num_pairs} > "
                       f"num_keys={self.num_keys}")
    if self.num_values < 2:
      raise ValueError(f"MQAR needs num_values >= 2 (chance < 1), got num_values={self.num_values}")
    if not 1 <= self.queries <= self.num_pairs:
      raise ValueError(f"MQAR queries each key at most once: need 1 <= "
                       f"num_queries={self.num_queries} <= num_pairs={self.num_pairs}")

  @property
  def queries(self) -> int:
    """Number of queries per example."""
    return self.num_pairs if self.num_queries is None else self.num_queries

  @property
  def vocab_size(self) -> int:
    return 2 + self.num_keys + self.num_values

  def key_id(self, k: int) -> int:
    """Token id of key index k in [0, num_keys)."""
    if not 0 <= k < self.num_keys:
      raise ValueError(f"key index {k=} not in [0, {self.num_keys})")
    return 2 + k

  def value_id(self, v: int) -> int:
    """Token id of value index v in [0, num_values)."""
    if not 0 <= v < self.num_values:
      raise ValueError(f"value index {v=} not in [0, {self.num_values})")
    return 2 + self.num_keys + v

  def min_length(self) -> int:
    """Shortest context with room for the pairs and the queries."""
    return 2 * self.num_pairs + self.queries

  def build(self, pairs: Sequence[tuple[int, int]], queries: Sequence[tuple[int, int]],
            length: int, fill: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The example with (key, value) index `pairs` and (position, key) index `queries`.

    Positions are absolute and must lie after the pairs; `fill` (token ids, one per
    position of the sequence; only gap positions are read) defaults to FILL.
    """
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
      raise ValueError(f"MQAR keys must be distinct, got {keys=}")
    lookup = dict(pairs)
    start = 2 * len(pairs)
    inputs = np.full(length, self.FILL, np.int64) if fill is None else np.array(fill)
    if inputs.shape != (length,):
      raise ValueError(f"fill has shape {inputs.shape}, expected ({length},)")
    targets = np.full(length, PAD, np.int64)
    mask = np.zeros(length, np.bool_)
    for i, (k, v) in enumerate(pairs):
      inputs[2 * i], inputs[2 * i + 1] = self.key_id(k), self.value_id(v)
    for pos, k in queries:
      if not start <= pos < length or mask[pos]:
        raise ValueError(f"query position {pos=} repeated or not in [{start}, {length})")
      if k not in lookup:
        raise ValueError(f"query key {k=} is not among the pair keys {keys}")
      inputs[pos], targets[pos], mask[pos] = self.key_id(k), self.value_id(lookup[k]), True
    return _example(inputs, targets, mask)

  def example(self, rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    if length < self.min_length():
      raise ValueError(f"MQAR {length=} too short for num_pairs={self.num_pairs} pairs and "
                       f"{self.queries} queries: need >= {self.min_length()}")
    keys = rng.choice(self.num_keys, self.num_pairs, replace=False)
    values = rng.integers(0, self.num_values, self.num_pairs)
    start = 2 * self.num_pairs
    positions = np.sort(rng.choice(length - start, self.queries, replace=False)) + start
    query_keys = rng.permutation(keys)[: self.queries]
    fill = None
    if self.random_fill:
      fill = self.value_id(0) + rng.integers(0, self.num_values, length)
    return self.build(list(zip(keys.tolist(), values.tolist())),
                      list(zip(positions.tolist(), query_keys.tolist())), length, fill)

  def chance_accuracy(self, length: int) -> float:
    del length
    return 1.0 / self.num_values


@dataclasses.dataclass(frozen=True)
class Revision:
  """Keep the most important item: a stream of (importance, item) pairs, then a query.

  Vocabulary: 0 = PAD, 1 = QUERY, 2 .. 2+num_importances-1 = importance levels
  (level 0 lowest), 2+num_importances .. 2+num_importances+num_items-1 = items.

  An example of stream length `length` has n = 2*length + 1 tokens:

    imp_0 item_0 imp_1 item_1 ... imp_{length-1} item_{length-1} QUERY

  and is scored only at QUERY, whose target is the item with the highest importance.
  Ties go to the latest item with the top importance (a newcomer at least as important
  replaces the stored item); `build` applies this rule to any stream. `example` makes
  the top importance unique, so no generated answer depends on the tie rule: the
  winner's position is uniform over the stream, its level m uniform over 1..L-1 (L =
  num_importances; any level when length = 1) and every other level uniform over
  0..m-1. A random m (rather than always the top level) means the model cannot just
  wait for one level; it has to compare and revise. Items are uniform, with replacement.
  """

  num_items: int = 16         # size of the item range (chance = 1 / num_items)
  num_importances: int = 8    # number of importance levels

  name: ClassVar[str] = "revision"
  QUERY: ClassVar[int] = 1

  def __post_init__(self):
    if self.num_items < 2:
      raise ValueError(f"Revision needs num_items >= 2 (chance < 1), got "
                       f"num_items={self.num_items}")
    if self.num_importances < 2:
      raise ValueError(f"Revision needs num_importances >= 2, got "
                       f"num_importances={self.num_importances}")

  @property
  def vocab_size(self) -> int:
    return 2 + self.num_importances + self.num_items

  def importance_id(self, level: int) -> int:
    """Token id of importance level in [0, num_importances)."""
    if not 0 <= level < self.num_importances:
      raise ValueError(f"importance {level=} not in [0, {self.num_importances})")
    return 2 + level

  def item_id(self, item: int) -> int:
    """Token id of item index in [0, num_items)."""
    if not 0 <= item < self.num_items:
      raise ValueError(f"{item=} not in [0, {self.num_items})")
    return 2 + self.num_importances + item

  def build(self, importances: Sequence[int], items: Sequence[int]) -> dict[str, np.ndarray]:
    """The example for the given stream (level and item indices); ties: latest wins."""
    if len(importances) != len(items) or not importances:
      raise ValueError(f"need equal, non-zero numbers of importances and items, got "
                       f"{len(importances)=} and {len(items)=}")
    n = 2 * len(items) + 1
    inputs = np.full(n, self.QUERY, np.int64)
    inputs[0:-1:2] = [self.importance_id(int(m)) for m in importances]
    inputs[1:-1:2] = [self.item_id(int(x)) for x in items]
    levels = np.asarray(importances)
    winner = len(levels) - 1 - int(np.argmax(levels[::-1]))   # last occurrence of the max
    targets = np.full(n, PAD, np.int64)
    targets[-1] = self.item_id(int(items[winner]))
    mask = np.zeros(n, np.bool_)
    mask[-1] = True
    return _example(inputs, targets, mask)

  def example(self, rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    if length < 1:
      raise ValueError(f"Revision needs a stream of {length=} >= 1 pairs")
    if length == 1:
      levels = rng.integers(0, self.num_importances, 1)
    else:
      top = int(rng.integers(1, self.num_importances))
      levels = rng.integers(0, top, length)
      levels[rng.integers(0, length)] = top
    items = rng.integers(0, self.num_items, length)
    return self.build(levels.tolist(), items.tolist())

  def chance_accuracy(self, length: int) -> float:
    del length
    return 1.0 / self.num_items


RECALL_TASKS = {"mqar": MQAR, "revision": Revision}


def recall_task(name: str, **kwargs) -> MQAR | Revision:
  """The recall task `name` built with `kwargs` (its parameters)."""
  if name not in RECALL_TASKS:
    raise ValueError(f"unknown recall task {name=}; known: {sorted(RECALL_TASKS)}")
  return RECALL_TASKS[name](**kwargs)
