"""Text documents: the embedded default corpus, local text files and JSONL.

  default_corpus()                  -> CPython's own help texts (no download, no network)
  load_documents("default")         -> the same
  load_documents("data/*.txt")      -> one document per file
  load_documents("data/*.jsonl")    -> one document per line, field "text" by default

Every list comes back in a deterministic order (sorted keys / sorted paths, file line
order), so a seeded split or shuffle downstream is reproducible across machines.
"""

from __future__ import annotations

import glob
import json
import os


def default_corpus() -> list[str]:
  """Returns the help topics that ship with CPython (pydoc_data), one document per topic.

  About 80 documents / 460k characters of English technical prose, present on any Python
  install, so a fresh machine can train without fetching anything. Sorted by topic name.
  """
  # Imported lazily: only the default corpus needs it.
  from pydoc_data.topics import topics
  return [topics[key] for key in sorted(topics) if topics[key].strip()]


def _expand(pattern: str) -> list[str]:
  """Sorted files matching `pattern` (a path or glob); ValueError names it if none."""
  paths = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                 if os.path.isfile(p))
  if not paths:
    raise ValueError(f"no files match {pattern!r}")
  return paths


def _read_jsonl(path: str, text_key: str) -> list[str]:
  """Documents from one JSONL file; errors name the file and 1-based line number."""
  docs = []
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, start=1):
      if not line.strip():
        continue  # blank lines (e.g. a trailing newline) are not records
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
      if not isinstance(record, dict) or text_key not in record:
        raise ValueError(f"{path}:{lineno}: record has no key {text_key!r}")
      if not isinstance(record[text_key], str):
        raise ValueError(f"{path}:{lineno}: {text_key!r} is not a string")
      docs.append(record[text_key])
  return docs


def load_documents(spec: str, text_key: str = "text") -> list[str]:
  """Loads documents from "default", a .jsonl path/glob, or a path/glob of text files.

  Empty documents are dropped (they would only add separators); if nothing is left the
  ValueError names `spec`. `text_key` is the JSONL field that holds the text.
  """
  if spec == "default":
    return default_corpus()
  paths = _expand(spec)
  docs: list[str] = []
  for path in paths:
    if path.endswith(".jsonl"):
      docs.extend(_read_jsonl(path, text_key))
    else:
      with open(path, encoding="utf-8") as f:
        docs.append(f.read())
  docs = [d for d in docs if d.strip()]
  if not docs:
    raise ValueError(f"files matching {spec!r} contain no non-empty documents")
  return docs
