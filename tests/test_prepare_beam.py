"""The Beam prepare (DirectRunner): equal to the in-memory prepare, per-shard packing,
determinism across worker counts, every input format, bad input, interrupted runs."""

import json

import numpy as np
import pytest

from xlstm_jax.data import beam_prepare, default_corpus, load_documents, pack, prepare, shards
from xlstm_jax.data.pipeline import is_validation
from xlstm_jax.data.shards import PrepareSpec, StreamPacker

SEQ_LEN = 64


def _beam(spec: PrepareSpec, num_workers: int = 1) -> dict:
  # One worker runs in-process (fast start); 2 starts worker processes.
  return beam_prepare.prepare(spec, beam_prepare.pipeline_options(num_workers=num_workers),
                              verbose=False)


def _rows(split_source) -> np.ndarray:
  """Every record of a prepared split, in file order, as [N, 2T+1] rows."""
  return np.stack([np.frombuffer(split_source.source[i], np.int32)
                   for i in range(len(split_source))])


def _records(path, seq_len: int = SEQ_LEN) -> np.ndarray:
  return _rows(prepare.PackedRecords([str(path)], seq_len))


def _as_rows(examples: dict) -> np.ndarray:
  return np.concatenate([examples["inputs"], examples["targets"][:, -1:],
                         examples["segment_ids"]], axis=1)


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
  """The default corpus prepared once per layout, shared by the tests below."""
  root = tmp_path_factory.mktemp("prep")
  one = PrepareSpec("default", str(root / "beam1"), SEQ_LEN, num_shards=1)
  three = PrepareSpec("default", str(root / "beam3"), SEQ_LEN, num_shards=3)
  metas = {"one": _beam(one), "three": _beam(three)}
  prepare.prepare("default", root / "memory", SEQ_LEN, num_shards=1)
  return root, metas


# --- equal to the in-memory prepare ---------------------------------------------------

def test_one_shard_equals_the_in_memory_prepare(default_runs):
  root, metas = default_runs
  beam_meta, beam_splits = prepare.open_prepared(str(root / "beam1"))
  memory_meta, memory_splits = prepare.open_prepared(str(root / "memory"))
  assert {k: beam_meta[k] for k in memory_meta} == memory_meta == \
      {k: metas["one"][k] for k in memory_meta}
  for split in ("train", "val"):
    np.testing.assert_array_equal(_rows(beam_splits[split]), _rows(memory_splits[split]))
  docs = default_corpus()
  assert beam_meta["documents_train"] + beam_meta["documents_val"] == len(docs)
  assert beam_meta["bytes"] == sum(len(d.encode()) for d in docs)
  assert beam_meta["tokens_train"] + beam_meta["tokens_val"] == beam_meta["bytes"] + len(docs)


def test_each_shard_packs_its_document_range(default_runs):
  """The documented relation for S > 1: shard s = pack(split documents of range s)."""
  root, metas = default_runs
  docs = default_corpus()
  ranges = shards.shard_ranges(len(docs), 3)
  assert [r[0] for r in ranges[1:]] == [r[1] for r in ranges[:-1]] and ranges[-1][1] == len(docs)
  total = {"train": 0, "val": 0}
  for s, (start, stop) in enumerate(ranges):
    for split in ("train", "val"):
      mine = [docs[i] for i in range(start, stop)
              if is_validation(i, 0.05, 0) == (split == "val")]
      tokens = sum(len(d.encode()) + 1 for d in mine)
      path = root / "beam3" / shards.shard_name(split, s, 3)
      if tokens < SEQ_LEN + 1:
        assert not path.exists()
        continue
      want = _as_rows(pack([list(d.encode()) for d in mine], SEQ_LEN, 256))
      np.testing.assert_array_equal(_records(path), want)
      total[split] += len(want)
  assert total["train"] == metas["three"]["num_train"] > 0
  assert total["val"] == metas["three"]["num_val"] > 0
  listed = {name: n for name, n in metas["three"]["shards_train"] + metas["three"]["shards_val"]}
  assert sum(listed.values()) == total["train"] + total["val"]


def test_same_shards_with_two_worker_processes(default_runs, tmp_path):
  root, metas = default_runs
  spec = PrepareSpec("default", str(tmp_path / "w2"), SEQ_LEN, num_shards=3)
  assert _beam(spec, num_workers=2) == metas["three"]
  names = sorted(p.name for p in (root / "beam3").iterdir())
  assert names == sorted(p.name for p in (tmp_path / "w2").iterdir())
  for name in names:
    assert (root / "beam3" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name


def test_stream_packer_equals_pack():
  rng = np.random.default_rng(0)
  docs = [rng.integers(0, 200, rng.integers(1, 40)).tolist() for _ in range(50)]
  for seq_len in (1, 3, 16, 57):
    packer = StreamPacker(seq_len, eos_id=256)
    got = np.concatenate([packer.add(d) for d in docs])
    np.testing.assert_array_equal(got, _as_rows(pack(docs, seq_len, 256)))


# --- input formats --------------------------------------------------------------------

def _write_formats(d, docs: list[str], key: str = "body") -> None:
  """docs[0:2] as .jsonl.gz, [2:4] .jsonl.zst, [4:7] .parquet (2 row groups), [7:9] .jsonl,
  [9] a text file; file names sort in that order."""
  import gzip  # noqa: PLC0415

  import pyarrow as pa  # noqa: PLC0415
  import pyarrow.parquet as pq  # noqa: PLC0415
  import zstandard  # noqa: PLC0415

  def lines(part):
    return "".join(json.dumps({key: t, "id": i}) + "\n" for i, t in enumerate(part)).encode()
  (d / "a.jsonl.gz").write_bytes(gzip.compress(lines(docs[0:2])))
  (d / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines(docs[2:4])))
  pq.write_table(pa.table({key: docs[4:7]}), d / "c.parquet", row_group_size=2)
  (d / "d.jsonl").write_bytes(lines(docs[7:9]) + b"\n")
  (d / "e.txt").write_text(docs[9])


def test_every_input_format_through_the_pipeline(tmp_path):
  docs = [f"document {i}: " + "words and more words " * (i + 3) for i in range(10)]
  _write_formats(tmp_path, docs)
  corpus = str(tmp_path / "*.*")
  assert load_documents(corpus, "body") == docs
  for pattern, want in (("*.gz", docs[0:2]), ("*.zst", docs[2:4]), ("*.parquet", docs[4:7])):
    assert load_documents(str(tmp_path / pattern), "body") == want
  meta = _beam(PrepareSpec(corpus, str(tmp_path / "out"), 16, val_fraction=0.2, num_shards=1,
                           text_key="body"))
  prepare.prepare(corpus, tmp_path / "memory", 16, val_fraction=0.2, num_shards=1,
                  text_key="body")
  _, got = prepare.open_prepared(str(tmp_path / "out"))
  _, want = prepare.open_prepared(str(tmp_path / "memory"))
  assert meta["documents_train"] + meta["documents_val"] == len(docs)
  for split in ("train", "val"):
    np.testing.assert_array_equal(_rows(got[split]), _rows(want[split]))


# --- bad input ------------------------------------------------------------------------

def test_bad_records_name_file_and_line_or_row_group(tmp_path):
  import gzip  # noqa: PLC0415

  import pyarrow as pa  # noqa: PLC0415
  import pyarrow.parquet as pq  # noqa: PLC0415
  ok = json.dumps({"text": "fine"}) + "\n"
  cases = {
      "broken.jsonl": (ok + "{not json\n", r"broken\.jsonl:2: invalid JSON"),
      "nokey.jsonl": (ok + ok + json.dumps({"body": "x"}) + "\n",
                      r"nokey\.jsonl:3: record has no key 'text'"),
      "number.jsonl": (json.dumps({"text": 5}) + "\n", r"number\.jsonl:1: 'text' is int"),
      "latin.jsonl": (ok.encode() + b'{"text": "caf\xe9"}\n', r"latin\.jsonl: not UTF-8"),
      "cut.jsonl.gz": (gzip.compress((ok * 200).encode())[:-30],
                       r"cut\.jsonl\.gz: unreadable compressed file after line \d+"),
      "junk.jsonl.zst": (b"this is not zstd data",
                         r"junk\.jsonl\.zst: unreadable compressed file after line 0"),
      "junk.parquet": (b"PAR1 not really", r"junk\.parquet: unreadable Parquet file"),
  }
  for name, (content, message) in cases.items():
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ValueError, match=message):
      load_documents(str(path))
  pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "col.parquet")
  with pytest.raises(ValueError, match=r"col\.parquet: no column 'text' \(columns: \['body'\]\)"):
    load_documents(str(tmp_path / "col.parquet"))
  pq.write_table(pa.table({"text": ["a", "b", "c", None]}), tmp_path / "null.parquet",
                 row_group_size=2)
  with pytest.raises(ValueError, match=r"null\.parquet: row group 1, row 1: 'text' is NoneType"):
    load_documents(str(tmp_path / "null.parquet"))


def test_pipeline_errors_name_the_problem(tmp_path):
  (tmp_path / "a.jsonl").write_text(json.dumps({"text": "hello " * 40}) + "\n")
  (tmp_path / "b.jsonl").write_text(json.dumps({"text": "x"}) + "\n{oops\n")
  with pytest.raises(ValueError, match=r"b\.jsonl:2: invalid JSON"):
    _beam(PrepareSpec(str(tmp_path / "*.jsonl"), str(tmp_path / "o1"), 8))
  (tmp_path / "blank.jsonl").write_text(json.dumps({"text": "  "}) + "\n\n")
  with pytest.raises(ValueError, match=r"corpus .*blank\.jsonl.* holds no non-empty documents"):
    _beam(PrepareSpec(str(tmp_path / "blank.jsonl"), str(tmp_path / "o2"), 8))
  with pytest.raises(ValueError, match="no files match"):
    _beam(PrepareSpec(str(tmp_path / "none*.jsonl"), str(tmp_path / "o3"), 8))
  with pytest.raises(ValueError, match=r"241 train tokens .* seq_len"):
    _beam(PrepareSpec(str(tmp_path / "a.jsonl"), str(tmp_path / "o4"), 512, val_fraction=0.0))
  with pytest.raises(ValueError, match="num_shards must be >= 1"):
    PrepareSpec("default", str(tmp_path), 8, num_shards=0)


def test_output_dir_of_another_preparation_is_refused(default_runs, tmp_path):
  root, _ = default_runs
  out = tmp_path / "other"
  out.mkdir()
  (out / "meta.json").write_text((root / "beam1" / "meta.json").read_text())
  with pytest.raises(ValueError, match=r"already holds a different preparation \(seq_len: 64 "
                                       r"there, 32 now"):
    _beam(PrepareSpec("default", str(out), 32, num_shards=1))
  assert (out / "meta.json").is_file()  # refused before touching anything


def test_an_interrupted_run_leaves_nothing_training_reads(tmp_path):
  lines = [json.dumps({"text": f"line {i} " * 20}) for i in range(50)]
  corpus = tmp_path / "c.jsonl"
  corpus.write_text("\n".join(lines) + "\n")
  spec = PrepareSpec(str(corpus), str(tmp_path / "out"), 16, num_shards=2)
  _beam(spec)
  assert prepare.is_prepared(spec.out)
  # The same preparation again, on a corpus broken half-way: the old meta.json and shards
  # are gone first, and the failing run adds neither shards nor meta.json.
  corpus.write_text("\n".join(lines[:30] + ["{cut"] + lines[30:]) + "\n")
  with pytest.raises(ValueError, match=r"c\.jsonl:31: invalid JSON"):
    _beam(spec)
  assert not prepare.is_prepared(spec.out)
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
  # A shard failing while it writes (the count pass skipped): no file, not even a temporary.
  task = shards.ShardTask(0, 0, 51, ((str(corpus), 0),))
  with pytest.raises(ValueError, match=r"c\.jsonl:31"):
    shards.write_shard(task, spec)
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_command_line_summary_and_progress(tmp_path, capsys):
  (tmp_path / "a.txt").write_text("hello world, " * 50)
  prepare.main([f"--corpus={tmp_path / '*.txt'}", f"--out={tmp_path / 'p'}", "--seq_len=8",
                "--val_fraction=0", "--num_workers=1", "--progress_every=1e-9"])
  captured = capsys.readouterr()
  assert "prepare: shard 4/4: 1 documents, 651 tokens"  # one document: the last range in captured.err
  assert "MB/s" in captured.err
  assert "train: 1 documents, 651 tokens, 81 examples of 8 in 1 shard(s)" in captured.out
  assert "1.002 tokens per byte" in captured.out
  with pytest.raises(SystemExit, match="prepare: .*already holds a different preparation"):
    prepare.main([f"--corpus={tmp_path / '*.txt'}", f"--out={tmp_path / 'p'}", "--seq_len=4",
                  "--num_workers=1"])
