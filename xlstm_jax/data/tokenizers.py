"""Byte-level tokenizer: UTF-8 bytes 0..255 plus special tokens from id 256 on.

Id 256 is always EOS, the document separator used by packing (so the default vocab size
is 257); further special tokens, if any, get 257, 258, ... in the order given. Needs no
vocabulary file, so it works offline with any text. `load_tokenizer(spec)` picks this
or a BPE tokenizer (xlstm_jax.data.bpe) from a config string.
"""

from __future__ import annotations

from collections.abc import Sequence

EOS = "<eos>"


class ByteTokenizer:
  """UTF-8 byte tokenizer with EOS = 256 and optional extra special tokens after it."""

  def __init__(self, extra_special_tokens: Sequence[str] = ()):
    """`extra_special_tokens`: names for ids 257, 258, ... (EOS is always 256)."""
    names = [EOS, *extra_special_tokens]
    if len(set(names)) != len(names):
      raise ValueError(f"special tokens must be distinct, got {names}")
    self._special = {name: 256 + i for i, name in enumerate(names)}

  @property
  def vocab_size(self) -> int:
    """256 byte values plus the special tokens."""
    return 256 + len(self._special)

  @property
  def eos_id(self) -> int:
    """The document separator id (256)."""
    return self._special[EOS]

  def special_id(self, name: str) -> int:
    """Id of special token `name`; ValueError if there is no such token."""
    if name not in self._special:
      raise ValueError(f"unknown special token {name!r}; have {sorted(self._special)}")
    return self._special[name]

  def encode(self, text: str) -> list[int]:
    """The UTF-8 bytes of `text` as ids 0..255 (no EOS is appended)."""
    return list(text.encode("utf-8"))

  def decode(self, ids: Sequence[int]) -> str:
    """Text of the byte ids; special ids are skipped, invalid UTF-8 becomes U+FFFD.

    Out-of-vocabulary ids raise ValueError (a model with a padded vocab should never
    emit them for a byte tokenizer, so they indicate a bug rather than data).
    """
    out = bytearray()
    for i in ids:
      i = int(i)
      if not 0 <= i < self.vocab_size:
        raise ValueError(f"id {i} outside vocab of size {self.vocab_size}")
      if i < 256:
        out.append(i)
    return out.decode("utf-8", errors="replace")


def load_tokenizer(spec: str):
  """"byte" -> ByteTokenizer(); a path to a tokenizer.json -> a byte-level BPETokenizer.

  Both have vocab_size, eos_id, encode(text) and decode(ids). Train a BPE vocabulary
  locally with `python -m xlstm_jax.data.bpe --corpus=default --vocab_size=2048 --out=F`.
  """
  if spec == "byte":
    return ByteTokenizer()
  if spec.endswith(".json"):
    from xlstm_jax.data.bpe import BPETokenizer  # noqa: PLC0415 (only BPE runs need it)
    return BPETokenizer.from_file(spec)
  raise ValueError(f"tokenizer {spec!r} is neither 'byte' nor a path to a tokenizer.json")
