"""Data: corpora, the byte tokenizer, packing and grain pipelines (all offline).

  xlstm_jax.data.corpus       default_corpus(), load_documents(spec)
  xlstm_jax.data.tokenizers   ByteTokenizer (256 bytes + EOS = 256)
  xlstm_jax.data.pipeline     split_documents, pack, make_dataset (grain)
"""

from xlstm_jax.data.corpus import default_corpus, load_documents
from xlstm_jax.data.pipeline import make_dataset, pack, split_documents
from xlstm_jax.data.tokenizers import ByteTokenizer

__all__ = ["ByteTokenizer", "default_corpus", "load_documents", "make_dataset", "pack",
           "split_documents"]
