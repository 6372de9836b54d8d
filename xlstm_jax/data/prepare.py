"""`prepare`: tokenize, split and pack a corpus once into ArrayRecord shards for grain.

  python -m xlstm_jax.data.prepare --corpus='data/*.jsonl.zst' --seq_len=2048 --out=data/prep
  python train.py --config=configs/default.py --workdir=runs/x --config.data.corpus=data/prep \\
      --config.seq_len=2048

The output directory holds `train-00000-of-0000N.array_record`, `val-...` and `meta.json`
(seq_len, tokenizer, vocab size, EOS id, example counts). Each record is one packed example
as int32: the seq_len + 1 token window (inputs = [:-1], targets = [1:]) followed by the
seq_len segment ids, exactly what `pipeline.pack` makes in memory, so training on a
prepared directory and on the raw corpus gives the same batches. Shards hold consecutive
examples; grain's ArrayRecordDataSource reads them as one random-access sequence.

The command line runs the Apache Beam pipeline of `beam_prepare` (streaming, parallel,
any Beam runner; each shard packs a contiguous range of documents). `prepare()` below is
the in-memory reference for small corpora: the Beam output with num_shards=1 equals it
record for record (tests/test_prepare_beam.py). This module needs no Beam: training
imports it for `is_prepared` and `open_prepared`.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import grain
import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from xlstm_jax.data import shards
from xlstm_jax.data.corpus import load_documents
from xlstm_jax.data.pipeline import KEYS, pack, split_documents
from xlstm_jax.data.shards import FORMAT, META, SPLITS, shard_name
from xlstm_jax.data.tokenizers import load_tokenizer

__all__ = ["FORMAT", "META", "PackedRecords", "is_prepared", "main", "open_prepared", "prepare"]


def is_prepared(spec: str) -> bool:
  """Whether `spec` names a directory written by `prepare`."""
  return (pathlib.Path(spec).expanduser() / META).is_file()


def _write_split(out: pathlib.Path, split: str, examples: dict, num_shards: int) -> None:
  records = np.concatenate([examples["inputs"], examples["targets"][:, -1:],
                            examples["segment_ids"]], axis=1).astype(np.int32)
  for shard, part in enumerate(np.array_split(records, num_shards)):
    writer = ArrayRecordWriter(str(out / shard_name(split, shard, num_shards)), "group_size:1")
    for row in part:
      writer.write(row.tobytes())
    writer.close()


def prepare(corpus: str, out, seq_len: int, tokenizer: str = "byte", val_fraction: float = 0.05,
            seed: int = 0, num_shards: int = 4, text_key: str = "text") -> dict:
  """In memory, on one host: writes the shards and meta.json of `corpus` into `out`.

  The whole split is packed as one stream, and shards hold consecutive examples. Returns
  the metadata. For large corpora use the command line (the Beam pipeline).
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  tok = load_tokenizer(tokenizer)
  train_docs, val_docs = split_documents(load_documents(corpus, text_key), val_fraction, seed)
  out = pathlib.Path(out).expanduser()
  out.mkdir(parents=True, exist_ok=True)
  meta = {"format": FORMAT, "corpus": corpus, "seq_len": seq_len, "tokenizer": tokenizer,
          "vocab_size": tok.vocab_size, "eos_id": tok.eos_id, "val_fraction": val_fraction,
          "seed": seed}
  for split, docs in zip(SPLITS, (train_docs, val_docs)):
    examples = pack([tok.encode(d) for d in docs], seq_len, tok.eos_id) if docs else None
    count = 0 if examples is None else len(examples["inputs"])
    if count:
      _write_split(out, split, examples, min(num_shards, count))
    meta[f"num_{split}"] = count
  (out / META).write_text(json.dumps(meta, indent=2) + "\n")
  return meta


class PackedRecords:
  """A prepared split as a random-access source: records[i] -> {inputs, targets, segment_ids}."""

  def __init__(self, paths: list[str], seq_len: int):
    self.source = grain.sources.ArrayRecordDataSource(paths)
    self.seq_len = seq_len

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    row = np.frombuffer(self.source[i], np.int32)
    T = self.seq_len
    if row.shape != (2 * T + 1,):
      raise ValueError(f"record {i} has {row.size} int32 values, expected {2 * T + 1} for "
                       f"seq_len {T}")
    return dict(zip(KEYS, (row[:T], row[1:T + 1], row[T + 1:])))


def open_prepared(directory: str) -> tuple[dict, dict[str, PackedRecords | None]]:
  """(meta, {"train": records, "val": records or None}) of a prepared directory."""
  d = pathlib.Path(directory).expanduser()
  meta = json.loads((d / META).read_text())
  if meta.get("format") != FORMAT:
    raise ValueError(f"{d / META} has format {meta.get('format')!r}, expected {FORMAT!r}")
  splits = {}
  for split in SPLITS:
    paths = sorted(str(p) for p in d.glob(f"{split}-*.array_record"))
    if meta[f"num_{split}"] and not paths:
      raise ValueError(f"{d} lists {meta[f'num_{split}']} {split} examples but has no "
                       f"{split}-*.array_record files")
    splits[split] = PackedRecords(paths, meta["seq_len"]) if paths else None
  return meta, splits


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m xlstm_jax.data.prepare",
      description="Tokenize, split and pack a corpus into ArrayRecord shards with an Apache "
                  "Beam pipeline; point --config.data.corpus at the output directory to train "
                  "on them. Arguments not listed here are Beam pipeline options.",
      epilog="Cluster: --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/t "
             "(or --runner=FlinkRunner --flink_master=HOST:PORT); the output directory must "
             "be a filesystem every worker writes.")
  parser.add_argument("--corpus", required=True,
                      help='"default" (Python\'s help texts), or a path / glob of text files, '
                           '*.jsonl, *.jsonl.gz, *.jsonl.zst or *.parquet')
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--seq_len", type=int, required=True,
                      help="tokens per example; must equal the run's config.seq_len")
  parser.add_argument("--tokenizer", default="byte",
                      help='"byte" or the path of a tokenizer.json (BPE)')
  parser.add_argument("--val_fraction", type=float, default=0.05,
                      help="fraction of documents held out for validation")
  parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
  parser.add_argument("--num_shards", type=int, default=4,
                      help="ArrayRecord files per split, each packing a contiguous range of "
                           "documents (1: exactly the in-memory prepare's examples)")
  parser.add_argument("--text_key", default="text",
                      help="JSONL field / Parquet column holding the text")
  parser.add_argument("--runner", default="DirectRunner",
                      help="Beam runner: DirectRunner (this machine), DataflowRunner, "
                           "FlinkRunner, SparkRunner, ...")
  parser.add_argument("--num_workers", type=int, default=None,
                      help="DirectRunner worker processes (default: all local cores)")
  parser.add_argument("--progress_every", type=float, default=10.0,
                      help="seconds between a shard's progress lines (0: none)")
  args, beam_args = parser.parse_known_args(argv)
  # Beam is imported here, not at the top: training imports this module for the reader
  # side (open_prepared), and needs no Beam.
  from xlstm_jax.data import beam_prepare  # noqa: PLC0415
  spec = shards.PrepareSpec(args.corpus, args.out, args.seq_len, args.tokenizer, args.val_fraction,
                     args.seed, args.num_shards, args.text_key)
  options = beam_prepare.pipeline_options(args.runner, args.num_workers, beam_args)
  try:
    beam_prepare.prepare(spec, options, args.progress_every)
  except ValueError as e:
    raise SystemExit(f"prepare: {e}") from e


if __name__ == "__main__":
  main()
