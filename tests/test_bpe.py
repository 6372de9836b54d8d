"""BPETokenizer: round trips, compression, save/load, determinism, HF parity, errors, CLI.

HF parity uses fixtures/bpe/ (made by fixtures/make_bpe_fixture.py with HF `tokenizers`,
which these tests do not need).
"""

import collections
import json
import os

import pytest

from xlstm_jax.data.bpe import BYTE_CHARS, BPETokenizer, main, pretokenize_pattern
from xlstm_jax.data.corpus import default_corpus

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "bpe")
HF_JSON = os.path.join(FIXTURES, "hf_tokenizer.json")
with open(os.path.join(FIXTURES, "expected.json"), encoding="utf-8") as _f:
  EXPECTED = json.load(_f)
TEXTS = [
    "Plain ASCII: The quick brown fox, 42 times.", "café naïve Ångström Straße Ελληνικά русский",
    "日本語 中文 한국어", "emoji 🙂🚀 👩‍👩‍👧 🇩🇪", "   runs   of\t\tspaces  ", "a\n\n b\r\n\n",
    "digits 0123456789 ٣ ² ½", "don't 'll 've", "", " ", "e\u0301\u0303 \x00\x1f\x7f",
    "<eos> is plain text here",
]


@pytest.fixture(scope="module")
def docs() -> list[str]:
  """The default corpus; the last 8 documents are held out of training."""
  return default_corpus()


@pytest.fixture(scope="module")
def tok(docs) -> BPETokenizer:
  """A 512-id tokenizer trained on all but the last 8 documents."""
  return BPETokenizer.train(docs[:-8], vocab_size=512)


def test_round_trip(tok, docs):
  for text in TEXTS + docs[-8:]:
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids), text
    assert tok.decode(ids) == text


def test_layout(tok):
  """Bytes are ids 0..255, EOS 256 (as in ByteTokenizer), merges after it."""
  assert (tok.vocab_size, tok.eos_id, tok.special_id("<eos>")) == (512, 256, 256)
  assert tok.encode("a") == [97] and tok.encode("\xff") == [0xc3, 0xbf]
  assert len(tok.merges) == 512 - 257
  assert max(tok.encode(" the")) > 256  # a learned merge


def test_compresses_held_out(tok, docs):
  held_out = docs[-8:]
  n_bytes = sum(len(d.encode("utf-8")) for d in held_out)
  n_tokens = sum(len(tok.encode(d)) for d in held_out)
  assert n_bytes / n_tokens > 1.8, (n_bytes, n_tokens)  # 2.35 when written


def test_special_tokens_are_text_and_skipped_in_decode(docs):
  tok = BPETokenizer.train(docs[:10], 300, special_tokens=("<eos>", "<pad>"))
  assert (tok.eos_id, tok.special_id("<pad>")) == (256, 257)
  assert not {256, 257} & set(tok.encode("<eos><pad>"))
  assert tok.decode([256, *tok.encode("hi"), 257]) == "hi"
  with pytest.raises(ValueError, match="<bos>"):
    tok.special_id("<bos>")


def test_save_from_file_round_trip(tok, docs, tmp_path):
  path = tmp_path / "tokenizer.json"
  tok.save(path)
  spec = json.loads(path.read_text(encoding="utf-8"))
  assert spec["added_tokens"][0]["content"] == "<eos>" and spec["added_tokens"][0]["special"]
  assert spec["model"]["type"] == "BPE" and spec["pre_tokenizer"]["type"] == "ByteLevel"
  loaded = BPETokenizer.from_file(path)
  assert (loaded.vocab_size, loaded.eos_id, loaded.merges) == (tok.vocab_size, 256, tok.merges)
  for text in TEXTS + docs[-8:]:
    assert loaded.encode(text) == tok.encode(text)


def test_training_is_deterministic(docs):
  """vocab 1024 on the whole corpus; doc order does not matter (ties broken by bytes)."""
  first = BPETokenizer.train(docs, vocab_size=1024)
  again = BPETokenizer.train(docs[::-1], vocab_size=1024)
  assert first.merges == again.merges and first.vocab_size == 1024


def _naive_merges(docs: list[str], n_new: int) -> list[tuple[bytes, bytes]]:
  """Reference trainer: recounts every pair before each merge (same tie-break, by bytes)."""
  counts = collections.Counter(w.encode() for d in docs for w in pretokenize_pattern().findall(d))
  words = {w: [bytes([b]) for b in w] for w in counts}
  tokens, merges = {bytes([b]) for b in range(256)}, []
  while len(tokens) < 256 + n_new:
    pairs = collections.Counter()
    for w, seq in words.items():
      for p in zip(seq, seq[1:]):
        pairs[p] += counts[w]
    if not pairs:
      break
    a, b = min(pairs, key=lambda p: (-pairs[p], p))
    merges.append((a, b))
    tokens.add(a + b)
    words = {w: _merge_bytes(seq, a, b) for w, seq in words.items()}
  return merges


def _merge_bytes(seq: list[bytes], a: bytes, b: bytes) -> list[bytes]:
  """`seq` with each (a, b), left to right, joined."""
  out, i = [], 0
  while i < len(seq):
    if i + 1 < len(seq) and (seq[i], seq[i + 1]) == (a, b):
      out.append(a + b)
      i += 2
    else:
      out.append(seq[i])
      i += 1
  return out


def test_incremental_training_matches_naive_recount(docs):
  tok = BPETokenizer.train(docs[:8], vocab_size=257 + 120)
  spell = lambda t: "".join(BYTE_CHARS[x] for x in t)
  assert tok.merges == [(spell(a), spell(b)) for a, b in _naive_merges(docs[:8], 120)]


def test_small_corpus_stops_when_pairs_run_out():
  tok = BPETokenizer.train(["abab abab"], vocab_size=1000)
  assert tok.vocab_size < 1000 and len(tok.encode("abab")) == len(tok.encode(" abab")) == 1
  assert tok.decode(tok.encode("abab abab!")) == "abab abab!"


@pytest.mark.parametrize("probe", EXPECTED["probes"], ids=lambda p: repr(p["text"][:20]))
def test_hf_parity(probe):
  """Ids recorded from HF tokenizers on its own tokenizer.json ([a, b] merges)."""
  tok = BPETokenizer.from_file(HF_JSON)
  assert (tok.eos_id, tok.vocab_size) == (EXPECTED["eos_id"], EXPECTED["vocab_size"])
  assert tok.encode(probe["text"]) == probe["ids"]
  assert tok.decode(probe["ids"]) == probe["decoded"] == probe["text"]


def test_hf_string_merges(tmp_path):
  """The older "a b" spelling of merges loads to the same tokenizer."""
  spec = json.loads(open(HF_JSON, encoding="utf-8").read())
  spec["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]
  (tmp_path / "t.json").write_text(json.dumps(spec), encoding="utf-8")
  tok = BPETokenizer.from_file(tmp_path / "t.json", eos_token="<|endoftext|>")
  for probe in EXPECTED["probes"]:
    assert tok.encode(probe["text"]) == probe["ids"]


def _write_variant(tmp_path, **changes) -> str:
  """The HF fixture with top-level keys replaced (dicts are merged one level deep)."""
  spec = json.loads(open(HF_JSON, encoding="utf-8").read())
  for key, value in changes.items():
    merge = isinstance(value, dict) and isinstance(spec[key], dict)
    spec[key] = {**spec[key], **value} if merge else value
  path = str(tmp_path / "variant.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(spec, f)
  return path


@pytest.mark.parametrize("changes,named", [
    (dict(model={"type": "WordPiece"}), "WordPiece"),
    (dict(model={"type": "Unigram"}), "Unigram"),
    (dict(pre_tokenizer={"type": "Metaspace"}), "Metaspace"),
    (dict(decoder=None), "None"),
    (dict(normalizer={"type": "NFC"}), "NFC"),
])
def test_from_file_rejects_unsupported(tmp_path, changes, named):
  with pytest.raises(ValueError, match=named) as err:
    BPETokenizer.from_file(_write_variant(tmp_path, **changes))
  assert "supported" in str(err.value)


def test_from_file_eos(tmp_path):
  pad = [dict(id=0, content="<pad>", special=True)]
  with pytest.raises(ValueError, match=r"\['<pad>'\].*eos_token=") as err:
    BPETokenizer.from_file(_write_variant(tmp_path, added_tokens=pad))
  assert "<|endoftext|>" in str(err.value)  # the known EOS names are listed
  assert BPETokenizer.from_file(_write_variant(tmp_path, added_tokens=pad), "<pad>").eos_id == 0
  with pytest.raises(ValueError, match="<nope>"):
    BPETokenizer.from_file(HF_JSON, eos_token="<nope>")


def test_decode_rejects_bad_ids(tok):
  for bad in (tok.vocab_size, -1, 10**6):
    with pytest.raises(ValueError, match=rf"id {bad} "):
      tok.decode([97, bad])


def test_train_rejects_bad_arguments(docs):
  with pytest.raises(ValueError, match="vocab_size=257"):
    BPETokenizer.train(docs[:2], 257, special_tokens=("<eos>", "<pad>"))
  with pytest.raises(ValueError, match="eos_token='</s>'"):
    BPETokenizer.train(docs[:2], 300, eos_token="</s>")
  with pytest.raises(ValueError, match="distinct"):
    BPETokenizer.train(docs[:2], 300, special_tokens=("<eos>", "<eos>"))


def test_cli(docs, tmp_path, capsys):
  for i, doc in enumerate(docs[:3]):
    (tmp_path / f"{i}.txt").write_text(doc, encoding="utf-8")
  out = tmp_path / "tok.json"
  main([f"--corpus={tmp_path}/*.txt", "--vocab_size=280", f"--out={out}"])
  printed = capsys.readouterr().out
  assert "vocab_size=280" in printed and "bytes per token" in printed
  assert BPETokenizer.from_file(out).vocab_size == 280
  with pytest.raises(SystemExit) as exit_info:
    main(["--help"])
  assert exit_info.value.code == 0 and "--vocab_size" in capsys.readouterr().out
