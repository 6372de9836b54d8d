"""Text documents: the embedded default corpus, local text, JSONL(.gz/.zst) and Parquet.

  default_corpus()                  -> CPython's own help texts (no download, no network)
  load_documents("default")         -> the same
  load_documents("data/*.txt")      -> one document per file
  load_documents("data/*.jsonl")    -> one document per line, field "text" by default
  (.jsonl.gz, .jsonl.zst and .parquet too: see xlstm_jax.data.readers)

Every list comes back in a deterministic order (sorted keys / sorted paths, file line
order), so a seeded split or shuffle downstream is reproducible across machines.
"""

from __future__ import annotations

from collections.abc import Iterable

from xlstm_jax.data.readers import expand, iter_documents


def default_corpus() -> list[str]:
  """Returns the help topics that ship with CPython (pydoc_data), one document per topic.

  About 80 documents / 460k characters of English technical prose, present on any Python
  install, so a fresh machine can train without fetching anything. Sorted by topic name.
  """
  # Imported lazily: only the default corpus needs it.
  from pydoc_data.topics import topics
  return [topics[key] for key in sorted(topics) if topics[key].strip()]


def corpus_sources(spec: str) -> list[str]:
  """The sources of `spec` in document order: ["default"] or the sorted matching files."""
  return ["default"] if spec == "default" else expand(spec)


def iter_source(source: str, text_key: str = "text") -> Iterable[str]:
  """The non-empty documents of one source of `corpus_sources`, streamed where it can."""
  return default_corpus() if source == "default" else iter_documents(source, text_key)


def load_documents(spec: str, text_key: str = "text") -> list[str]:
  """Loads documents from "default" or a path/glob of text, JSONL(.gz/.zst) or Parquet files.

  Empty documents are dropped (they would only add separators); if nothing is left the
  ValueError names `spec`. `text_key` is the JSONL field that holds the text.
  """
  docs = [doc for source in corpus_sources(spec) for doc in iter_source(source, text_key)]
  if not docs:
    raise ValueError(f"files matching {spec!r} contain no non-empty documents")
  return docs
