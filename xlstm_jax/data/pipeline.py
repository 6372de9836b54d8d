"""Train/validation split, sequence packing and the grain input pipeline.

  train, val = split_documents(docs, val_fraction=0.05, seed=0)
  examples = pack([tok.encode(d) for d in train], seq_len=256, eos_id=tok.eos_id)
  ds = make_dataset(PackedArrays(examples), batch_size=8, seed=0, rows=(0, 8))
  it = iter(ds); batch = next(it); state = it.get_state(); ...; it.set_state(state)

Uses grain's MapDataset API (grain 0.2.x: `grain.MapDataset.range(n)`, `.shuffle(seed)`,
`.repeat(num_epochs)`, `.batch(...)`, `.map(...)`, `.to_iter_dataset()`);
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


def is_validation(index: int, val_fraction: float, seed: int = 0) -> bool:
  """Whether document `index` (0-based, in corpus order) is held out: the split's one rule."""
  return _unit_hash(index, seed) < val_fraction


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
    (val if is_validation(i, val_fraction, seed) else train).append(doc)
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


class PackedArrays:
  """The packed examples of `pack()` as a random-access source: ds[i] -> one row each."""

  def __init__(self, examples: dict[str, np.ndarray]):
    missing = [k for k in KEYS if k not in examples]
    if missing:
      raise ValueError(f"examples lack keys {missing}; pack() makes them")
    self.arrays = {k: np.asarray(examples[k]) for k in KEYS}

  def __len__(self) -> int:
    return len(self.arrays["inputs"])

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {k: v[i] for k, v in self.arrays.items()}


def make_dataset(source, batch_size: int, seed: int = 0, shuffle: bool = True,
                 num_epochs: int | None = None,
                 rows: tuple[int, int] | None = None) -> grain.IterDataset:
  """A grain IterDataset of numpy batches: each key of the source's examples, stacked.

  `source` is random access (len, [i] -> example dict of equal-shape arrays):
  `PackedArrays`, `prepare.PackedRecords` or `tasks.TaskSource`. The global order does not depend on the number of hosts: the
  example indices are shuffled with `seed` (a fresh order each epoch), repeated
  `num_epochs` times (None: forever) and cut into global batches of `batch_size` (the last
  partial batch dropped). Each host reads only `rows` = (start, stop) of every global batch
  (default: all of it; the training loop passes the rows its devices hold), so any number
  of hosts trains on exactly the batches one host would. The iterator's
  get_state()/set_state() checkpoint and restore the position exactly.
  """
  n = len(source)
  if batch_size < 1 or batch_size > n:
    raise ValueError(f"batch_size {batch_size} must be in [1, {n}] (the number of examples)")
  start, stop = rows if rows is not None else (0, batch_size)
  if not 0 <= start < stop <= batch_size:
    raise ValueError(f"rows ({start}, {stop}) must satisfy 0 <= start < stop <= "
                     f"batch_size={batch_size}")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
  ds = grain.MapDataset.range(n)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  # Batch the indices (cheap ints), keep this host's rows, then read only those examples.
  ds = ds.repeat(num_epochs).batch(batch_size, drop_remainder=True)

  def read(indices):
    examples = [source[int(i)] for i in indices[start:stop]]
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

  return ds.map(read).to_iter_dataset()
