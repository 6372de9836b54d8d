"""Train/validation split, sequence packing and the grain input pipeline.

  train, val = split_documents(docs, val_fraction=0.05, seed=0)
  examples = pack([tok.encode(d) for d in train], seq_len=256, eos_id=tok.eos_id)
  ds = make_dataset(examples, batch_size=8, seed=0, shard_index=jax.process_index(),
                    shard_count=jax.process_count())
  it = iter(ds); batch = next(it); state = it.get_state(); ...; it.set_state(state)

Uses grain's MapDataset API (grain 0.2.x: `grain.MapDataset.range(n)`, slicing for
shards, `.shuffle(seed)`, `.repeat(num_epochs)`, `.batch(...)`, `.to_iter_dataset()`);
its iterators are checkpointable through `get_state()` / `set_state()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import grain
import numpy as np

T = TypeVar("T")
KEYS = ("inputs", "targets", "segment_ids")


def _unit_hash(index: int, seed: int) -> float:
  """A stable value in [0, 1) for (index, seed); unlike hash() it is not salted per run."""
  digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
  return int.from_bytes(digest, "little") / 2**64


def split_documents(docs: Sequence[T], val_fraction: float,
                    seed: int = 0) -> tuple[list[T], list[T]]:
  """Splits docs into (train, validation), each document by a stable hash of index+seed.

  The same (index, seed) always lands in the same split on any machine and Python run,
  and adding documents at the end never moves earlier ones. Order is kept in both.
  """
  if not 0.0 <= val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
  train, val = [], []
  for i, doc in enumerate(docs):
    (val if _unit_hash(i, seed) < val_fraction else train).append(doc)
  return train, val


def pack(token_docs: Sequence[Sequence[int]], seq_len: int,
         eos_id: int) -> dict[str, np.ndarray]:
  """Packs documents, each followed by EOS, into [N, seq_len] int32 arrays.

  The stream doc0 EOS doc1 EOS ... is cut into windows of seq_len + 1 tokens with stride
  seq_len (consecutive windows share one token, so no target is lost); inputs = w[:-1],
  targets = w[1:]. segment_ids numbers the documents of each input row from 1 (an EOS
  belongs to the document it ends), so ids change exactly after an EOS; positions whose
  input is EOS predict the next document's first token, and a loss can mask them with
  `inputs != eos_id`. The tail shorter than a window is dropped.
  """
  if seq_len < 1:
    raise ValueError(f"seq_len must be >= 1, got {seq_len}")
  parts, doc_ids = [], []
  for d, doc in enumerate(token_docs):
    parts.append(np.asarray(list(doc) + [eos_id], dtype=np.int32))
    doc_ids.append(np.full(len(doc) + 1, d, dtype=np.int32))
  stream = np.concatenate(parts) if parts else np.zeros(0, np.int32)
  num = (len(stream) - 1) // seq_len
  if num < 1:
    raise ValueError(f"{len(stream)} tokens (with EOS) are too few for one example of "
                     f"seq_len {seq_len} (needs {seq_len + 1})")
  starts = np.arange(num)[:, None] * seq_len
  windows = stream[starts + np.arange(seq_len + 1)[None, :]]
  docs = np.concatenate(doc_ids)[starts + np.arange(seq_len)[None, :]]
  # Renumber per row from 1: rows are shuffled independently, so global ids carry nothing.
  segment_ids = (docs - docs[:, :1] + 1).astype(np.int32)
  return {"inputs": windows[:, :-1], "targets": windows[:, 1:], "segment_ids": segment_ids}


def make_dataset(examples: dict[str, np.ndarray], batch_size: int, seed: int = 0,
                 shuffle: bool = True, num_epochs: int | None = None,
                 shard_index: int = 0, shard_count: int = 1) -> grain.IterDataset:
  """A grain IterDataset of {"inputs", "targets", "segment_ids"} numpy batches [B, T].

  Examples are first cut to a multiple of shard_count and sharded by striding, so every
  host gets a disjoint, equally long shard (hosts step in lockstep); then shuffled with
  `seed` (a fresh order each epoch), repeated `num_epochs` times (None: forever) and
  batched with the last partial batch dropped. Iterate with iter(ds); the iterator's
  get_state()/set_state() checkpoint and restore the position exactly.
  """
  missing = [k for k in KEYS if k not in examples]
  if missing:
    raise ValueError(f"examples lack keys {missing}; pack() makes them")
  n = len(examples["inputs"])
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index {shard_index} not in [0, shard_count={shard_count})")
  per_shard = n // shard_count
  if batch_size < 1 or batch_size > per_shard:
    raise ValueError(f"batch_size {batch_size} must be in [1, {per_shard}]: {n} examples "
                     f"over {shard_count} shard(s) give {per_shard} per shard")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
  arrays = {k: np.asarray(examples[k]) for k in KEYS}
  ds = grain.MapDataset.range(per_shard * shard_count)[shard_index::shard_count]
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs)
  # Index -> row lookup after shuffling keeps the shuffled object small (ints, not rows).
  ds = ds.map(lambda i: {k: v[i] for k, v in arrays.items()})
  return ds.batch(batch_size, drop_remainder=True).to_iter_dataset()
