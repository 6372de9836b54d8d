"""Data layer: corpus, byte tokenizer, split, packing, grain pipeline (CPU, fast)."""

import json

import numpy as np
import pytest

from xlstm_jax.data import prepare
from xlstm_jax.data import (ByteTokenizer, PackedArrays, default_corpus, load_documents,
                            make_dataset, pack, split_documents)

EOS = 256


def _examples(n: int, seq_len: int = 4) -> PackedArrays:
  """n distinct examples: row i of inputs is all i, so rows are identifiable in batches."""
  rows = np.repeat(np.arange(n, dtype=np.int32)[:, None], seq_len, axis=1)
  return PackedArrays({"inputs": rows, "targets": rows + 1, "segment_ids": np.ones_like(rows)})


def _take(it, k: int) -> list[dict[str, np.ndarray]]:
  return [next(it) for _ in range(k)]


# --- corpus ---------------------------------------------------------------------------

def test_default_corpus_is_real_english_text():
  docs = default_corpus()
  text = " ".join(docs)
  assert len(docs) > 50 and len(text) > 100_000
  words = set(text.lower().split())
  assert {"the", "and", "of", "is", "function"} <= words
  assert default_corpus() == docs  # deterministic order
  assert load_documents("default") == docs


def test_load_text_files_and_jsonl(tmp_path):
  (tmp_path / "b.txt").write_text("second file")
  (tmp_path / "a.txt").write_text("first file, ünïcode")
  (tmp_path / "empty.txt").write_text("  \n")
  assert load_documents(str(tmp_path / "*.txt")) == ["first file, ünïcode", "second file"]
  lines = [json.dumps({"text": "one"}), "", json.dumps({"body": "two", "text": "x"})]
  (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
  assert load_documents(str(tmp_path / "d.jsonl")) == ["one", "x"]
  (tmp_path / "e.jsonl").write_text(json.dumps({"body": "b"}) + "\n")
  assert load_documents(str(tmp_path / "e.jsonl"), text_key="body") == ["b"]


def test_load_errors_name_pattern_file_and_line(tmp_path):
  with pytest.raises(ValueError, match="nothing_here"):
    load_documents(str(tmp_path / "nothing_here*.txt"))
  (tmp_path / "blank.txt").write_text("")
  with pytest.raises(ValueError, match="blank"):
    load_documents(str(tmp_path / "blank.txt"))
  bad = tmp_path / "bad.jsonl"
  bad.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"title": "no"}) + "\n")
  with pytest.raises(ValueError, match=r"bad\.jsonl:2: record has no key 'text'"):
    load_documents(str(bad))
  bad.write_text("{not json\n")
  with pytest.raises(ValueError, match=r"bad\.jsonl:1: invalid JSON"):
    load_documents(str(bad))


# --- tokenizer ------------------------------------------------------------------------

def test_byte_tokenizer_round_trip_and_specials():
  tok = ByteTokenizer()
  assert tok.vocab_size == 257 and tok.eos_id == EOS == tok.special_id("<eos>")
  text = "Grüße, 東京 🙂 tab\t"
  ids = tok.encode(text)
  assert ids == list(text.encode("utf-8")) and max(ids) < 256
  assert tok.decode(ids) == text
  assert tok.decode(ids[:3] + [tok.eos_id] + ids[3:]) == text  # specials are skipped
  assert tok.decode([0xE6, 0x9D]) == "\ufffd"  # cut-off UTF-8 -> replacement char
  tok2 = ByteTokenizer(["<pad>"])
  assert tok2.vocab_size == 258 and tok2.special_id("<pad>") == 257
  with pytest.raises(ValueError, match="outside vocab of size 257"):
    tok.decode([257])
  with pytest.raises(ValueError, match="unknown special token"):
    tok.special_id("<pad>")
  with pytest.raises(ValueError, match="distinct"):
    ByteTokenizer(["<eos>"])


# --- split ----------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_stable():
  docs = [f"doc {i}" for i in range(1000)]
  train, val = split_documents(docs, 0.1, seed=3)
  assert split_documents(docs, 0.1, seed=3) == (train, val)
  assert set(train).isdisjoint(val) and sorted(train + val) == sorted(docs)
  assert 50 < len(val) < 150  # ~10%
  # Appending documents never moves the earlier ones.
  train2, val2 = split_documents(docs + ["new"] * 50, 0.1, seed=3)
  assert [d for d in val2 if d != "new"] == val
  assert split_documents(docs, 0.1, seed=4)[1] != val  # the seed matters
  assert split_documents(docs, 0.0)[1] == []
  with pytest.raises(ValueError, match="val_fraction"):
    split_documents(docs, 1.0)


# --- packing --------------------------------------------------------------------------

def test_pack_shifts_separates_and_segments():
  docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]]
  ex = pack(docs, seq_len=3, eos_id=EOS)
  stream = np.array([1, 2, 3, EOS, 4, 5, EOS, 6, 7, 8, 9, EOS, 10, EOS])
  n = (len(stream) - 1) // 3
  assert all(v.shape == (n, 3) and v.dtype == np.int32 for v in ex.values())
  np.testing.assert_array_equal(ex["inputs"].reshape(-1), stream[:n * 3])
  np.testing.assert_array_equal(ex["targets"].reshape(-1), stream[1:n * 3 + 1])
  np.testing.assert_array_equal(ex["inputs"][:, 1:], ex["targets"][:, :-1])
  for inp, seg in zip(ex["inputs"], ex["segment_ids"]):
    assert seg[0] == 1
    steps = np.diff(seg)
    # The segment id goes up by one exactly at positions right after an EOS.
    np.testing.assert_array_equal(steps, (inp[:-1] == EOS).astype(np.int32))


def test_pack_real_corpus_and_too_short():
  tok = ByteTokenizer()
  docs = default_corpus()[:5]
  ex = pack([tok.encode(d) for d in docs], seq_len=64, eos_id=tok.eos_id)
  assert int((ex["inputs"] == tok.eos_id).sum()) in (4, 5)  # EOS between documents
  assert tok.decode(ex["inputs"][0]) == docs[0][:64]
  with pytest.raises(ValueError, match="6 tokens .* seq_len 8"):
    pack([[1, 2, 3, 4, 5]], seq_len=8, eos_id=EOS)


# --- grain pipeline -------------------------------------------------------------------

def test_dataset_batches_and_determinism():
  ex = _examples(20)
  ds = make_dataset(ex, batch_size=4, seed=7, num_epochs=1)
  batches = list(ds)
  assert len(batches) == 5
  assert set(batches[0]) == {"inputs", "targets", "segment_ids"}
  assert all(b["inputs"].shape == (4, 4) for b in batches)
  seen = np.concatenate([b["inputs"][:, 0] for b in batches])
  assert sorted(seen) == list(range(20)) and list(seen) != list(range(20))  # shuffled
  np.testing.assert_array_equal(batches[0]["targets"], batches[0]["inputs"] + 1)
  again = list(make_dataset(ex, batch_size=4, seed=7, num_epochs=1))
  assert all(np.array_equal(a["inputs"], b["inputs"]) for a, b in zip(batches, again))
  other = list(make_dataset(ex, batch_size=4, seed=8, num_epochs=1))
  assert any(not np.array_equal(a["inputs"], b["inputs"]) for a, b in zip(batches, other))
  plain = list(make_dataset(ex, batch_size=4, shuffle=False, num_epochs=1))
  assert list(np.concatenate([b["inputs"][:, 0] for b in plain])) == list(range(20))
  forever = iter(make_dataset(ex, batch_size=4, seed=7))  # num_epochs=None repeats
  assert len(_take(forever, 12)) == 12


def test_host_rows_assemble_the_one_host_batches():
  ex = _examples(22)  # 22 -> 4 global batches of 5, the remainder dropped
  whole = list(make_dataset(ex, batch_size=5, seed=1, num_epochs=1))
  hosts = [list(make_dataset(ex, batch_size=5, seed=1, num_epochs=1, rows=rows))
           for rows in ((0, 2), (2, 5))]
  assert len(whole) == len(hosts[0]) == len(hosts[1]) == 4  # hosts step in lockstep
  for full, first, second in zip(whole, *hosts):
    for key in full:
      np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), full[key])


def test_iterator_state_restore_resumes_exactly():
  ex = _examples(24)
  k = 5
  reference = _take(iter(make_dataset(ex, batch_size=4, seed=2, num_epochs=3)), 12)
  it = iter(make_dataset(ex, batch_size=4, seed=2, num_epochs=3))
  _take(it, k)
  state = it.get_state()
  _take(it, 3)  # move on, then rewind to the saved state
  it.set_state(state)
  fresh = iter(make_dataset(ex, batch_size=4, seed=2, num_epochs=3))
  fresh.set_state(state)  # a new process restoring from a checkpoint
  for got in (it, fresh):
    for want in reference[k:]:
      b = next(got)
      assert all(np.array_equal(b[key], want[key]) for key in want)


def test_dataset_errors_name_the_numbers():
  ex = _examples(10)
  with pytest.raises(ValueError, match=r"batch_size 11 must be in \[1, 10\]"):
    make_dataset(ex, batch_size=11)
  with pytest.raises(ValueError, match="batch_size 0"):
    make_dataset(ex, batch_size=0)
  with pytest.raises(ValueError, match=r"rows \(2, 5\) .* batch_size=4"):
    make_dataset(ex, batch_size=4, rows=(2, 5))
  with pytest.raises(ValueError, match="num_epochs"):
    make_dataset(ex, batch_size=1, num_epochs=0)
  with pytest.raises(ValueError, match="lack keys"):
    PackedArrays({"inputs": ex.arrays["inputs"]})


# --- prepared ArrayRecord shards ------------------------------------------------------

def test_prepared_shards_give_the_in_memory_batches(tmp_path):
  docs = [f"document {i}: " + "some text " * (i % 7 + 1) for i in range(60)]
  corpus = tmp_path / "docs.jsonl"
  corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
  meta = prepare.prepare(str(corpus), tmp_path / "prep", seq_len=16, val_fraction=0.2, seed=3,
                         num_shards=3)
  assert prepare.is_prepared(str(tmp_path / "prep")) and not prepare.is_prepared(str(tmp_path))
  assert len(list((tmp_path / "prep").glob("train-*-of-00003.array_record"))) == 3
  opened_meta, splits = prepare.open_prepared(str(tmp_path / "prep"))
  assert opened_meta == meta and meta["vocab_size"] == 257 and meta["eos_id"] == 256
  tok = ByteTokenizer()
  train_docs, val_docs = split_documents(docs, 0.2, seed=3)
  for split, split_docs in (("train", train_docs), ("val", val_docs)):
    memory = PackedArrays(pack([tok.encode(d) for d in split_docs], 16, tok.eos_id))
    assert len(splits[split]) == len(memory) == meta[f"num_{split}"] > 0
    got = list(make_dataset(splits[split], batch_size=4, seed=5, num_epochs=1))
    want = list(make_dataset(memory, batch_size=4, seed=5, num_epochs=1))
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
      for key in b:
        np.testing.assert_array_equal(a[key], b[key])


def test_prepare_errors(tmp_path):
  with pytest.raises(ValueError, match="no files match"):
    prepare.prepare(str(tmp_path / "missing*.txt"), tmp_path / "out", seq_len=8)
  with pytest.raises(ValueError, match="tokenizer 'gpt2' is neither"):
    prepare.prepare("default", tmp_path / "out", seq_len=8, tokenizer="gpt2")
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "meta.json").write_text(json.dumps({"format": "other"}))
  with pytest.raises(ValueError, match="format 'other'"):
    prepare.open_prepared(str(tmp_path / "bad"))


def test_prepare_command_line(tmp_path):
  (tmp_path / "a.txt").write_text("hello world, " * 50)
  prepare.main([f"--corpus={tmp_path / '*.txt'}", f"--out={tmp_path / 'p'}", "--seq_len=8",
                "--val_fraction=0", "--num_workers=1"])
  meta, splits = prepare.open_prepared(str(tmp_path / "p"))
  assert meta["num_val"] == 0 and splits["val"] is None
  assert meta["num_train"] == len(splits["train"]) == (650 + 1 - 1) // 8
  np.testing.assert_array_equal(splits["train"][0]["inputs"], list(b"hello wo"))


def test_run_seed_leaves_the_validation_split_alone(tmp_path):
  """`seed` sweeps (init, data order) score every run on the same held-out documents;
  data.split_seed moves the split, and a config from before the field splits with seed."""
  from test_task_runs import _config  # noqa: PLC0415
  from xlstm_jax.training.data import sources  # noqa: PLC0415
  for i in range(60):
    (tmp_path / f"doc{i:02d}.txt").write_text(f"document number {i} " * 3)

  def split(train=True, **overrides):
    config = _config("default", None)
    config.data.corpus, config.data.val_fraction = str(tmp_path / "*.txt"), 0.2
    config.seq_len = 8
    for key, value in overrides.items():
      if key == "split_seed" and value is None:
        del config.data["split_seed"]
      elif key == "split_seed":
        config.data.split_seed = value
      else:
        setattr(config, key, value)
    return sources(config, ByteTokenizer(), train)

  def val_rows(**overrides):
    return split(**overrides)[1].arrays["inputs"]

  base = val_rows(seed=0)
  np.testing.assert_array_equal(val_rows(seed=1), base)
  no_train, val = split(train=False)   # evaluation builds the validation split alone
  assert no_train is None
  np.testing.assert_array_equal(val.arrays["inputs"], base)
  assert not np.array_equal(val_rows(seed=0, split_seed=5), base)
  np.testing.assert_array_equal(val_rows(seed=5, split_seed=None), val_rows(seed=0, split_seed=5))
