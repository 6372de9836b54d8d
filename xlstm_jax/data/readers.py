"""Streaming document readers: text, JSONL, JSONL.gz, JSONL.zst and Parquet files.

  for text in iter_documents("shard-0001.jsonl.zst", text_key="text"): ...
  paths = expand("data/*.parquet")        # sorted files; ValueError names the pattern

Each reader yields one file's non-empty documents in file order and holds at most one
line (JSONL) or one row group (Parquet) in memory, so a prepare of any size streams.
The format follows the name: `.jsonl`, `.jsonl.gz`, `.jsonl.zst`, `.parquet`; any other
file is one plain-text document (as before). Errors name the file and the 1-based line
(JSONL) or 0-based row group and row (Parquet), and say what is wrong.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator

# Only compressed and Parquet corpora need these; the GPU image may lack them, so they
# load on first use rather than when training imports the data package.
_LAZY = {}

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
PARQUET_SUFFIX = ".parquet"


def expand(pattern: str) -> list[str]:
  """Sorted files matching `pattern` (a path or glob, ** allowed); ValueError if none."""
  paths = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                 if os.path.isfile(p))
  if not paths:
    raise ValueError(f"no files match {pattern!r}")
  return paths


def _zstd():
  if "zstd" not in _LAZY:
    import zstandard  # noqa: PLC0415 (optional: only .zst corpora need it)
    _LAZY["zstd"] = zstandard
  return _LAZY["zstd"]


@contextlib.contextmanager
def _open_text(path: str):
  """The file as UTF-8 text lines, decompressed by its suffix."""
  if path.endswith(".gz"):
    raw = gzip.open(path, "rb")
  elif path.endswith(".zst"):
    raw = _zstd().ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
  else:
    raw = open(path, "rb")
  with raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
    yield f


def _read_errors() -> tuple[type[BaseException], ...]:
  """What a truncated or corrupt compressed file raises while it is read."""
  errors = [gzip.BadGzipFile, EOFError, zlib.error]
  if "zstd" in _LAZY:
    errors.append(_LAZY["zstd"].ZstdError)
  return tuple(errors)


def iter_jsonl(path: str, text_key: str = "text") -> Iterator[str]:
  """Non-empty `text_key` strings of a JSONL file (plain, .gz or .zst), in line order."""
  lineno = 0
  try:
    with _open_text(path) as f:
      for lineno, line in enumerate(f, start=1):
        if not line.strip():
          continue  # blank lines (e.g. a trailing newline) are not records
        try:
          record = json.loads(line)
        except json.JSONDecodeError as e:
          raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(record, dict) or text_key not in record:
          raise ValueError(f"{path}:{lineno}: record has no key {text_key!r}")
        text = record[text_key]
        if not isinstance(text, str):
          raise ValueError(f"{path}:{lineno}: {text_key!r} is {type(text).__name__}, "
                           f"expected a string")
        if text.strip():
          yield text
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text after line {lineno} ({e.reason})") from None
  except _read_errors() as e:
    raise ValueError(f"{path}: unreadable compressed file after line {lineno} "
                     f"({type(e).__name__}: {e})") from None


def iter_parquet(path: str, text_key: str = "text") -> Iterator[str]:
  """Non-empty `text_key` strings of a Parquet file, one row group in memory at a time."""
  import pyarrow  # noqa: PLC0415 (optional: only Parquet corpora need it)
  import pyarrow.parquet as pq  # noqa: PLC0415
  try:
    file = pq.ParquetFile(path)
  except (pyarrow.ArrowException, OSError) as e:
    raise ValueError(f"{path}: unreadable Parquet file ({e})") from None
  names = file.schema_arrow.names
  if text_key not in names:
    raise ValueError(f"{path}: no column {text_key!r} (columns: {names})")
  for group in range(file.num_row_groups):
    try:
      column = file.read_row_group(group, columns=[text_key]).column(0).to_pylist()
    except (pyarrow.ArrowException, OSError) as e:
      raise ValueError(f"{path}: row group {group}: unreadable ({e})") from None
    for row, text in enumerate(column):
      if not isinstance(text, str):
        raise ValueError(f"{path}: row group {group}, row {row}: {text_key!r} is "
                         f"{type(text).__name__}, expected a string")
      if text.strip():
        yield text


def iter_text_file(path: str) -> Iterator[str]:
  """The whole file as one document (if not blank)."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); JSONL "
                     f"corpora need a {'/'.join(JSONL_SUFFIXES)} name") from None
  if text.strip():
    yield text


def iter_documents(path: str, text_key: str = "text") -> Iterator[str]:
  """The non-empty documents of one file, by its format (see the module docstring)."""
  if path.endswith(JSONL_SUFFIXES):
    return iter_jsonl(path, text_key)
  if path.endswith(PARQUET_SUFFIX):
    return iter_parquet(path, text_key)
  return iter_text_file(path)
