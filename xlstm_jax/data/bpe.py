"""Byte-level BPE (GPT-2 style): train on local text, or read/write a HF tokenizer.json.

  tok = BPETokenizer.train(docs, vocab_size=2048)    # ids: 256 bytes, specials, merges
  tok = BPETokenizer.from_file("tokenizer.json")     # GPT-2 / ByteLevelBPETokenizer files
  python -m xlstm_jax.data.bpe --corpus=default --vocab_size=2048 --out=tokenizer.json

encode(text): split into pieces with the GPT-2 regex, map each piece's UTF-8 bytes to the
256 byte symbols (GPT-2's printable byte alphabet in the JSON), then apply merges lowest
rank first, every occurrence left to right. Same interface as ByteTokenizer.

Regex approximation: Python's `re` has no \\p{L} / \\p{N}, so both are explicit character
classes built from `unicodedata` categories L* and N* (Python 3.11: Unicode 14.0). Checked
against HF tokenizers 0.23 on every code point: the splits differ only for characters that
Unicode 14 has not assigned yet (Python then sees them as punctuation). \\s is Unicode
White_Space: Python's \\s would also match \\x1c-\\x1f, which the GPT-2 regex treats as
punctuation. (`[^\\W\\d_]` for \\p{L} would wrongly count No/Nl, such as "²", as letters.)

Deliberate differences from HF's defaults: special tokens written in the text are plain
text (HF's `encode_special_tokens=True`), so a document can never fake an EOS; the
post-processor is ignored (no BOS/EOS added: the caller appends EOS). Non-special added
tokens of a loaded file are matched in the text, longest first, as HF does.
"""

from __future__ import annotations

import argparse
import collections
import functools
import heapq
import itertools
import json
import re
import sys
import time
import unicodedata
from collections.abc import Sequence

EOS_CANDIDATES = ("<eos>", "<|endoftext|>", "</s>", "<|eos|>")
_CACHE_LIMIT = 100_000  # cached words; cleared when full so memory stays bounded
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


# GPT-2's byte -> char map: printable Latin-1 bytes stand for themselves; the other 68
# (controls, space, 0x7f-0xa0, 0xad) become chr(256), chr(257), ... in byte order.
_PRINTABLE = {*range(0x21, 0x7f), *range(0xa1, 0xad), *range(0xae, 0x100)}
_OTHERS = [b for b in range(256) if b not in _PRINTABLE]
BYTE_CHARS = [chr(b) if b in _PRINTABLE else chr(256 + _OTHERS.index(b)) for b in range(256)]
_CHAR_TO_BYTE = {c: b for b, c in enumerate(BYTE_CHARS)}


def _chars(data: bytes) -> str:
  """Bytes as a token string of the byte alphabet (how the JSON spells BPE tokens)."""
  return "".join(BYTE_CHARS[b] for b in data)


def _unchars(token: str) -> bytes | None:
  """Inverse of _chars; None if `token` has a character outside the byte alphabet."""
  try:
    return bytes(_CHAR_TO_BYTE[c] for c in token)
  except KeyError:
    return None


def _class(codepoints: list[int]) -> str:
  """Regex character-class body (no brackets) for sorted code points, as ranges."""
  runs = itertools.groupby(enumerate(codepoints), lambda ic: ic[1] - ic[0])
  return "".join(f"\\U{r[0][1]:08x}-\\U{r[-1][1]:08x}" for r in (list(g) for _, g in runs))


@functools.cache
def pretokenize_pattern() -> re.Pattern:
  """The GPT-2 split regex with \\p{L}, \\p{N}, \\s spelled out (see module docstring)."""
  cats = [unicodedata.category(chr(cp))[0] for cp in range(0x40000)]  # all L*, N* are here
  L, N = (_class([cp for cp, c in enumerate(cats) if c == k]) for k in "LN")
  S = _WHITE_SPACE
  return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+"
                    rf"|[{S}]+(?![^{S}])|[{S}]+")


def _merge(word: list[int], a: int, b: int, new: int) -> list[int]:
  """`word` with every (a, b), scanned left to right without overlap, replaced by `new`."""
  out, i, n = [], 0, len(word)
  while i < n:
    if i + 1 < n and word[i] == a and word[i + 1] == b:
      out.append(new)
      i += 2
    else:
      out.append(word[i])
      i += 1
  return out


def _learn_merges(counts: dict[bytes, int], n_new: int, reserved: set[bytes],
                  progress: bool) -> list[tuple[bytes, bytes]]:
  """Merges learned on unique words (UTF-8 bytes) with counts, until `n_new` new tokens.

  The most frequent pair wins; ties go to the lexicographically smallest (bytes_a, bytes_b).
  Pair counts change only in the words that held the merged pair. A lazy max-heap holds
  them: a popped entry whose count went stale is pushed back with its current count (old
  pairs only ever lose counts); pairs with the new token are pushed as they appear. A merge
  that spells an existing token reuses it (no new token); one that would spell a special
  token (`reserved`) is skipped.
  """
  tokens = [bytes([b]) for b in range(256)]  # local id -> bytes
  ids = {t: i for i, t in enumerate(tokens)}
  words, freqs = [list(w) for w in counts], list(counts.values())
  pairs: collections.Counter = collections.Counter()
  where = collections.defaultdict(set)  # pair -> words that held it (may be stale)
  for i, w in enumerate(words):
    for p in zip(w, w[1:]):
      pairs[p] += freqs[i]
      where[p].add(i)
  heap = [(-c, tokens[a], tokens[b], a, b) for (a, b), c in pairs.items()]
  heapq.heapify(heap)
  merges, target = [], 256 + n_new
  while len(tokens) < target and heap:
    neg, ta, tb, a, b = heapq.heappop(heap)
    count = pairs.get((a, b), 0)
    if count <= 0 or ta + tb in reserved:
      continue
    if count != -neg:
      heapq.heappush(heap, (-count, ta, tb, a, b))
      continue
    new = ids.get(ta + tb)
    if new is None:
      new = ids[ta + tb] = len(tokens)
      tokens.append(ta + tb)
    merges.append((ta, tb))
    touched = set()
    for i in where.pop((a, b)):
      w, f = words[i], freqs[i]
      nw = _merge(w, a, b, new)
      if len(nw) == len(w):
        continue  # the pair left this word in an earlier merge
      for p in zip(w, w[1:]):
        pairs[p] -= f
      for p in zip(nw, nw[1:]):
        pairs[p] += f
        where[p].add(i)
        touched.add(p)
      words[i] = nw
    pairs.pop((a, b), None)
    for p in touched:
      if new in p and pairs[p] > 0:
        heapq.heappush(heap, (-pairs[p], tokens[p[0]], tokens[p[1]], *p))
    if progress and len(merges) % 100 == 0:
      print(f"bpe: {len(merges)} merges, {len(tokens)}/{target} tokens", file=sys.stderr)
  return merges


def _single(spec: dict | None, key: str) -> dict | None:
  """A component spec with a "Sequence" of one (or no) element unwrapped; `key`: its list."""
  if spec and spec.get("type") == "Sequence" and len(spec.get(key) or []) <= 1:
    return (spec.get(key) or [None])[0]
  return spec


class BPETokenizer:
  """Byte-level BPE with ByteTokenizer's interface: vocab_size, eos_id, encode, decode."""

  def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]],
               added_tokens: Sequence[dict], eos_token: str, *, add_prefix_space: bool = False,
               use_regex: bool = True, ignore_merges: bool = False):
    """`vocab`, `merges`: in the JSON's byte-alphabet spelling; `added_tokens`: HF dicts
    (id, content, special, ...); `eos_token`: the content of one of them. The keyword
    options are those of HF's ByteLevel pre-tokenizer and BPE model."""
    self._vocab, self._merges = dict(vocab), [tuple(m) for m in merges]
    self._added = [dict(t) for t in added_tokens]
    self._options = dict(add_prefix_space=add_prefix_space, use_regex=use_regex,
                         ignore_merges=ignore_merges)
    if missing := [c for c in BYTE_CHARS if c not in self._vocab]:
      raise ValueError(f"vocab lacks {len(missing)} of the 256 byte tokens, e.g. {missing[:4]}")
    self._byte_ids = [self._vocab[c] for c in BYTE_CHARS]
    self._ranks: dict[tuple[int, int], tuple[int, int]] = {}  # pair -> (rank, merged id)
    for rank, (a, b) in enumerate(self._merges):
      if a not in self._vocab or b not in self._vocab or a + b not in self._vocab:
        raise ValueError(f"merge {rank} ({a!r}, {b!r}) uses a token that is not in the vocab")
      self._ranks.setdefault((self._vocab[a], self._vocab[b]), (rank, self._vocab[a + b]))
    added = {t["content"]: t["id"] for t in self._added}
    if eos_token not in added:
      raise ValueError(f"{eos_token=} is not an added token; have {sorted(added)}")
    self._eos_id = added[eos_token]
    self._special = {t["content"]: t["id"] for t in self._added
                     if t.get("special") or t["content"] == eos_token}
    self._plain = {c: i for c, i in added.items() if c not in self._special}
    if bad := [t["content"] for t in self._added if t["content"] in self._plain
               and any(t.get(k) for k in ("lstrip", "rstrip", "single_word"))]:
      raise ValueError(f"added tokens {bad}: lstrip/rstrip/single_word are not supported")
    self._plain_re = re.compile("|".join(map(re.escape, sorted(
        self._plain, key=len, reverse=True)))) if self._plain else None
    # id -> its text's bytes (like HF's ByteLevel decoder, the UTF-8 of a token outside the
    # byte alphabet); b"" for special tokens (skipped); None for unused ids.
    self._id_bytes: list[bytes | None] = [None] * (1 + max([*self._vocab.values(),
                                                            *added.values()]))
    for token, i in [*self._vocab.items(), *added.items()]:
      raw = _unchars(token)
      self._id_bytes[i] = token.encode() if raw is None else raw
    for i in self._special.values():
      self._id_bytes[i] = b""
    self._cache: dict[str, list[int]] = {}

  @property
  def vocab_size(self) -> int:
    """Number of ids (1 + the largest id), special and added tokens included."""
    return len(self._id_bytes)

  @property
  def eos_id(self) -> int:
    """The document separator id."""
    return self._eos_id

  @property
  def merges(self) -> list[tuple[str, str]]:
    """The merges in rank order, in the JSON's byte-alphabet spelling."""
    return list(self._merges)

  def special_id(self, name: str) -> int:
    """Id of special token `name`; ValueError if there is no such token."""
    if name not in self._special:
      raise ValueError(f"unknown special token {name!r}; have {sorted(self._special)}")
    return self._special[name]

  def _encode_word(self, word: str) -> list[int]:
    """Ids of one pre-token: its bytes, merged lowest rank first (a pass per merge applied,
    so quadratic in the worst case: fine for words, slow for huge unbroken pieces)."""
    data = word.encode("utf-8")
    if self._options["ignore_merges"] and _chars(data) in self._vocab:
      return [self._vocab[_chars(data)]]
    ids, ranks = [self._byte_ids[b] for b in data], self._ranks
    while len(ids) > 1:
      best = min(((ranks[p], p) for p in zip(ids, ids[1:]) if p in ranks), default=None)
      if best is None:
        break
      (_, new), (a, b) = best
      ids = _merge(ids, a, b, new)
    return ids

  def _encode_plain(self, text: str, out: list[int]) -> None:
    """Appends the ids of `text`, which holds no added token, to `out`."""
    if not text:
      return
    if self._options["add_prefix_space"] and not text.startswith(" "):
      text = " " + text
    cache = self._cache
    for word in pretokenize_pattern().findall(text) if self._options["use_regex"] else [text]:
      ids = cache.get(word)
      if ids is None:
        if len(cache) >= _CACHE_LIMIT:
          cache.clear()
        ids = cache[word] = self._encode_word(word)
      out.extend(ids)

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no EOS is appended; special-token strings are plain text)."""
    out: list[int] = []
    pos = 0
    for m in self._plain_re.finditer(text) if self._plain_re else ():
      self._encode_plain(text[pos:m.start()], out)
      out.append(self._plain[m.group()])
      pos = m.end()
    self._encode_plain(text[pos:], out)
    return out

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; special tokens are skipped, invalid UTF-8 becomes U+FFFD.

    An id outside the vocab (or an unused id) raises ValueError naming it.
    """
    parts = []
    for i in ids:
      i = int(i)
      raw = self._id_bytes[i] if 0 <= i < len(self._id_bytes) else None
      if raw is None:
        raise ValueError(f"id {i} is not in the vocab (size {self.vocab_size})")
      parts.append(raw)
    return b"".join(parts).decode("utf-8", errors="replace")

  @classmethod
  def train(cls, docs: Sequence[str], vocab_size: int, special_tokens: Sequence[str] = ("<eos>",),
            eos_token: str = "<eos>", progress: bool = False) -> BPETokenizer:
    """Learns merges on `docs` until `vocab_size` ids (fewer if the corpus runs out of pairs).

    Ids: 0..255 the bytes (id = byte value), then `special_tokens` in order, then merges.
    """
    special_tokens = list(special_tokens)
    if eos_token not in special_tokens:
      raise ValueError(f"{eos_token=} is not one of {special_tokens=}")
    bad = [s for s in special_tokens if not s or s in BYTE_CHARS or special_tokens.count(s) > 1]
    if bad:
      raise ValueError(f"special tokens must be distinct and longer than one byte; got {bad}")
    if vocab_size < 256 + len(special_tokens):
      raise ValueError(f"{vocab_size=} is below 256 byte tokens + {len(special_tokens)} special")
    words: collections.Counter = collections.Counter()
    for doc in docs:
      words.update(pretokenize_pattern().findall(doc))
    reserved = {r for r in map(_unchars, special_tokens) if r is not None}
    merges = _learn_merges({w.encode(): c for w, c in words.items()},
                           vocab_size - 256 - len(special_tokens), reserved, progress)
    vocab = {c: b for b, c in enumerate(BYTE_CHARS)}
    added = []
    for s in special_tokens:
      added.append(dict(id=len(vocab), content=s, single_word=False, lstrip=False,
                        rstrip=False, normalized=False, special=True))
      vocab[s] = len(vocab)
    for a, b in merges:
      vocab.setdefault(_chars(a + b), len(vocab))
    return cls(vocab, [(_chars(a), _chars(b)) for a, b in merges], added, eos_token)

  @classmethod
  def from_file(cls, path, eos_token: str | None = None) -> BPETokenizer:
    """Loads a HF tokenizer.json holding a byte-level BPE (GPT-2 style).

    `eos_token=None` picks the first special added token named in EOS_CANDIDATES.
    """
    with open(path, encoding="utf-8") as f:
      spec = json.load(f)
    model = spec.get("model") or {}
    kind = model.get("type", "BPE" if "merges" in model else None)
    pre = _single(spec.get("pre_tokenizer"), "pretokenizers")
    dec = _single(spec.get("decoder"), "decoders")
    norm = _single(spec.get("normalizer"), "normalizers")
    found = {"model": kind, "pre_tokenizer": (pre or {}).get("type"),
             "decoder": (dec or {}).get("type")}
    if found != {"model": "BPE", "pre_tokenizer": "ByteLevel", "decoder": "ByteLevel"}:
      raise ValueError(f"{path}: found {found}; only byte-level BPE (model BPE with ByteLevel "
                       "pre_tokenizer and decoder, as in GPT-2) is supported")
    if norm is not None:
      raise ValueError(f"{path}: normalizer {norm.get('type')!r} is not supported; only files "
                       "without one (as GPT-2's) are")
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
      if model.get(key):
        raise ValueError(f"{path}: BPE {key}={model[key]!r} is not supported")
    added = spec.get("added_tokens") or []
    if eos_token is None:
      specials = [t["content"] for t in added if t.get("special")]
      eos_token = next((c for c in EOS_CANDIDATES if c in specials), None)
      if eos_token is None:
        raise ValueError(f"{path}: none of the special tokens {specials} is a known EOS "
                         f"{EOS_CANDIDATES}; pass eos_token= to name the document separator")
    merges = [tuple(m.split(" ") if isinstance(m, str) else m) for m in model.get("merges", [])]
    if bad := [m for m in merges if len(m) != 2]:
      raise ValueError(f"{path}: merges {bad[:3]} are neither 'a b' strings nor [a, b] pairs")
    return cls(model["vocab"], merges, added, eos_token,
               add_prefix_space=bool(pre.get("add_prefix_space", False)),
               use_regex=bool(pre.get("use_regex", True)),
               ignore_merges=bool(model.get("ignore_merges", False)))

  def to_json(self) -> dict:
    """The HF tokenizer.json content (merges as "a b" unless a token holds a space)."""
    spaced = any(" " in a + b for a, b in self._merges)
    byte_level = dict(type="ByteLevel", add_prefix_space=self._options["add_prefix_space"],
                      trim_offsets=True, use_regex=self._options["use_regex"])
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": self._added,
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None,
        "decoder": dict(byte_level, add_prefix_space=True, use_regex=True),
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": self._options["ignore_merges"],
            "vocab": dict(sorted(self._vocab.items(), key=lambda kv: kv[1])),
            "merges": [[a, b] if spaced else f"{a} {b}" for a, b in self._merges]}}

  def save(self, path) -> None:
    """Writes a tokenizer.json that both from_file and HF `tokenizers` load."""
    with open(path, "w", encoding="utf-8") as f:
      json.dump(self.to_json(), f, ensure_ascii=False, indent=1)
      f.write("\n")


def main(argv: Sequence[str] | None = None) -> BPETokenizer:
  """CLI: trains on a corpus, saves tokenizer.json, prints vocab size and compression."""
  parser = argparse.ArgumentParser(
      prog="python -m xlstm_jax.data.bpe", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
      description="Train a byte-level BPE tokenizer (GPT-2 style) and save a HF tokenizer.json "
                  "that load_tokenizer(path) and Hugging Face `tokenizers` both read.")
  parser.add_argument("--corpus", default="default",
                      help='"default" (CPython help texts, offline), a path/glob of text files '
                           "(one document each) or of .jsonl files (one document per line)")
  parser.add_argument("--text_key", default="text", help="JSONL field holding the text")
  parser.add_argument("--vocab_size", type=int, default=2048,
                      help="total ids: 256 bytes + special tokens + learned merges")
  parser.add_argument("--eos_token", default="<eos>", help="the document separator token")
  parser.add_argument("--out", default="tokenizer.json", help="where to write tokenizer.json")
  parser.add_argument("--progress", action="store_true", help="print merge progress")
  args = parser.parse_args(argv)
  from xlstm_jax.data.corpus import load_documents  # noqa: PLC0415 (CLI only)
  docs = load_documents(args.corpus, args.text_key)
  start = time.perf_counter()
  tok = BPETokenizer.train(docs, args.vocab_size, (args.eos_token,), args.eos_token,
                           args.progress)
  seconds = time.perf_counter() - start
  tok.save(args.out)
  n_bytes = sum(len(d.encode("utf-8")) for d in docs)
  n_tokens = sum(len(tok.encode(d)) for d in docs)
  print(f"vocab_size={tok.vocab_size} ({len(tok.merges)} merges, eos_id={tok.eos_id}), "
        f"trained in {seconds:.1f}s on {len(docs)} documents -> {args.out}")
  print(f"compression on {args.corpus!r}: {n_bytes} bytes / {n_tokens} tokens = "
        f"{n_bytes / n_tokens:.2f} bytes per token")
  return tok


if __name__ == "__main__":
  main()
