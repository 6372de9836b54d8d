"""The work of a streaming prepare, free of Beam: count, plan shards, write one shard.

  counts = [count_documents(s, "text") for s in corpus_sources(spec.corpus)]
  for task in plan_shards(counts, spec.num_shards): write_shard(task, spec)

Document i is the i-th non-empty document of the corpus (sources in sorted order, file
order within one), exactly the index today's in-memory split uses, so `is_validation(i)`
splits the same documents. Shard s owns the contiguous index range
[s * N // S, (s + 1) * N // S) of the N documents and packs, per split, its documents in
index order into seq_len + 1 windows (`StreamPacker`, the streaming form of
`pipeline.pack`). So a shard's records are `pack(split documents of its range)`, and with
S = 1 the output is today's, record for record; with S > 1 each shard drops its own
tail and starts its own windows. The ranges depend only on the corpus and S, never on
the runner or its workers, so any run writes byte-identical shards.

Why ranges and not a hash-to-shard GroupByKey: a shuffle of the documents sits in memory
on Beam's DirectRunner, so the corpus would; a range is read straight from its files by
one worker, and no step holds more than one document and one window per split.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from xlstm_jax.data.corpus import iter_source
from xlstm_jax.data.pipeline import is_validation
from xlstm_jax.data.tokenizers import ByteTokenizer, load_tokenizer

FORMAT = "xlstm_jax.packed_int32.v1"  # meta.json's "format": the record layout below
META = "meta.json"                     # written last: its presence marks a complete run
SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class PrepareSpec:
  """What to prepare; meta.json records these fields, and a rerun must match them."""
  corpus: str          # "default", or a path / glob of text, JSONL(.gz/.zst), Parquet files
  out: str             # output directory (local or a filesystem every worker shares)
  seq_len: int         # tokens per example; each record holds seq_len + 1 window tokens
  tokenizer: str = "byte"      # "byte" or the path of a tokenizer.json
  val_fraction: float = 0.05   # held-out fraction of documents (stable hash of the index)
  seed: int = 0                # seed of the train/validation split
  num_shards: int = 4          # ArrayRecord files per split (document ranges)
  text_key: str = "text"       # JSONL field / Parquet column holding the text

  def __post_init__(self):
    if self.seq_len < 1:
      raise ValueError(f"seq_len must be >= 1, got {self.seq_len}")
    if self.num_shards < 1:
      raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
    if not 0.0 <= self.val_fraction < 1.0:
      raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclasses.dataclass(frozen=True)
class ShardTask:
  """Shard `index` packs documents [start, stop); `sources` = (source, its first index)."""
  index: int
  start: int
  stop: int
  sources: tuple[tuple[str, int], ...]


def shard_name(split: str, index: int, num_shards: int) -> str:
  return f"{split}-{index:05d}-of-{num_shards:05d}.array_record"


def count_documents(source: str, text_key: str) -> tuple[str, int]:
  """(source, its number of non-empty documents); reading it also checks every record."""
  return source, sum(1 for _ in iter_source(source, text_key))


def shard_ranges(total: int, num_shards: int) -> list[tuple[int, int]]:
  """The [start, stop) document range of each shard: contiguous, sizes within one."""
  return [(s * total // num_shards, (s + 1) * total // num_shards) for s in range(num_shards)]


def plan_shards(counts: list[tuple[str, int]], num_shards: int, corpus: str) -> list[ShardTask]:
  """One task per shard from the per-source counts, given in corpus order."""
  total = sum(n for _, n in counts)
  if total == 0:
    raise ValueError(f"the corpus {corpus!r} ({len(counts)} file(s)) holds no non-empty "
                     f"documents")
  firsts = np.cumsum([0] + [n for _, n in counts])
  tasks = []
  for s, (start, stop) in enumerate(shard_ranges(total, num_shards)):
    sources = tuple((source, int(first)) for (source, n), first in zip(counts, firsts)
                    if n and first < stop and first + n > start)
    tasks.append(ShardTask(s, start, stop, sources))
  return tasks


class StreamPacker:
  """`pipeline.pack` over a stream of documents: `add(ids)` returns the finished records.

  A record is the int32 row [window (seq_len + 1 tokens), segment ids (seq_len)], the
  prepared format. Only the unfinished tail (< one window, plus the current document)
  is held; the tail left at the end is dropped, as `pack` drops it.
  """

  def __init__(self, seq_len: int, eos_id: int):
    self.seq_len, self.eos_id = seq_len, eos_id
    self.tokens = np.zeros(0, np.int32)
    self.doc_ids = np.zeros(0, np.int32)
    self.next_doc = 0

  def add(self, ids) -> np.ndarray:
    T = self.seq_len
    doc = np.append(np.asarray(ids, np.int32), np.int32(self.eos_id))
    self.tokens = np.concatenate([self.tokens, doc])
    self.doc_ids = np.concatenate([self.doc_ids, np.full(len(doc), self.next_doc, np.int32)])
    self.next_doc += 1
    num = (len(self.tokens) - 1) // T
    if num < 1:
      return np.zeros((0, 2 * T + 1), np.int32)
    starts = np.arange(num)[:, None] * T
    windows = self.tokens[starts + np.arange(T + 1)[None, :]]
    docs = self.doc_ids[starts + np.arange(T)[None, :]]
    self.tokens, self.doc_ids = self.tokens[num * T:], self.doc_ids[num * T:]
    # Ids only matter relative to a row's first; rebasing keeps them far from overflow.
    self.next_doc -= int(self.doc_ids[0])
    self.doc_ids = self.doc_ids - self.doc_ids[0]
    return np.concatenate([windows, docs - docs[:, :1] + 1], axis=1).astype(np.int32)


def encode(tok, text: str) -> np.ndarray:
  """Token ids of `text` as int32; the byte tokenizer skips the per-id Python list."""
  if isinstance(tok, ByteTokenizer):
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
  return np.asarray(tok.encode(text), np.int32)


class _ShardFile:
  """A split's output file of one shard: written under a temporary name, renamed on close."""

  def __init__(self, out: str, name: str):
    self.final = os.path.join(out, name)
    self.temp = os.path.join(out, f".{name}.{uuid.uuid4().hex}.tmp")
    self.writer = None
    self.count = 0

  def write(self, records: np.ndarray) -> None:
    if self.writer is None:
      self.writer = ArrayRecordWriter(self.temp, "group_size:1")
    for row in records:
      self.writer.write(row.tobytes())
    self.count += len(records)

  def commit(self) -> None:
    if self.writer is not None:
      self.writer.close()
      self.writer = None
      os.replace(self.temp, self.final)  # atomic: readers see the whole shard or none

  def discard(self) -> None:
    if self.writer is not None:
      self.writer.close()
      self.writer = None
    if os.path.exists(self.temp):
      os.remove(self.temp)


def write_shard(task: ShardTask, spec: PrepareSpec, progress_every: float = 10.0) -> dict:
  """Reads, splits, tokenizes and packs the task's documents into its shard files.

  Returns the shard's counts: documents, tokens (with EOS) and examples per split, and
  the UTF-8 bytes of text read. Prints progress to stderr every `progress_every` s.
  """
  tok = load_tokenizer(spec.tokenizer)
  packers = {split: StreamPacker(spec.seq_len, tok.eos_id) for split in SPLITS}
  files = {split: _ShardFile(spec.out, shard_name(split, task.index, spec.num_shards))
           for split in SPLITS}
  stats = {"shard": task.index, "bytes": 0, **{f"{k}_{split}": 0 for split in SPLITS
                                               for k in ("documents", "tokens", "examples")}}
  began = last = time.perf_counter()
  try:
    for source, first in task.sources:
      for i, text in enumerate(iter_source(source, spec.text_key), start=first):
        if i >= task.stop:
          break
        if i < task.start:
          continue
        split = "val" if is_validation(i, spec.val_fraction, spec.seed) else "train"
        ids = encode(tok, text)
        files[split].write(packers[split].add(ids))
        stats["bytes"] += len(text.encode("utf-8"))
        stats[f"documents_{split}"] += 1
        stats[f"tokens_{split}"] += len(ids) + 1
        if progress_every and time.perf_counter() - last > progress_every:
          last = time.perf_counter()
          print(f"prepare: shard {task.index + 1}/{spec.num_shards}: "
                f"{stats['documents_train'] + stats['documents_val']} documents, "
                f"{stats['tokens_train'] + stats['tokens_val']} tokens, "
                f"{stats['bytes'] / 1e6 / (last - began):.2f} MB/s", file=sys.stderr, flush=True)
    for split in SPLITS:
      files[split].commit()
      stats[f"examples_{split}"] = files[split].count
  except BaseException:
    for f in files.values():
      f.discard()
    raise
  return stats
