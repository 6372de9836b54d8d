"""Data: corpora, tokenizers, packing, grain pipelines and prepared shards (all offline).

  xlstm_jax.data.corpus       default_corpus(), load_documents(spec)
  xlstm_jax.data.tokenizers   ByteTokenizer (256 bytes + EOS = 256), load_tokenizer(spec)
  xlstm_jax.data.bpe          BPETokenizer: byte-level BPE, trained locally or from tokenizer.json
  xlstm_jax.data.pipeline     split_documents, pack, PackedArrays, make_dataset (grain)
  xlstm_jax.data.readers      streaming readers: text, JSONL(.gz/.zst), Parquet; expand(glob)
  xlstm_jax.data.prepare      the prepared format: open_prepared, PackedRecords; the CLI; and
                              prepare(...), the in-memory reference
  xlstm_jax.data.shards       the streaming prepare's work, Beam-free: plan and write shards
  xlstm_jax.data.beam_prepare the Apache Beam pipeline around it (imports apache_beam)
"""

from xlstm_jax.data.corpus import default_corpus, load_documents
from xlstm_jax.data.pipeline import PackedArrays, make_dataset, pack, split_documents
from xlstm_jax.data.tokenizers import ByteTokenizer, load_tokenizer

__all__ = ["ByteTokenizer", "PackedArrays", "default_corpus", "load_documents", "load_tokenizer",
           "make_dataset", "pack", "split_documents"]
