"""The run's data from its config: tokenizer, train/validation sources, per-host batches.

`config.data.corpus` is "default", a text glob, a *.jsonl glob, or a directory written by
`python -m xlstm_jax.data.prepare` (ArrayRecord shards, already tokenized and packed).
A config with `data.task` (e.g. configs/formal.py) trains on a synthetic task instead:
examples of sizes `data.train_lengths` for training and `data.val_lengths` for the
periodic validation, padded to seq_len, with the answer positions as the loss mask.
Every host iterates the same global batches and reads only the rows its devices hold, so
the batches, and therefore the losses, do not depend on the number of hosts.
`config` is a RunConfig (training.config); a ConfigDict or dict is converted on entry.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh

from xlstm_jax import data as data_lib
from xlstm_jax.data import prepare
from xlstm_jax.training.config import RunConfig, run_config
from xlstm_jax.training.step import batch_sharding


def host_rows(mesh: Mesh, batch_size: int, seq_len: int) -> tuple[int, int]:
  """(start, stop): the rows of a global [batch_size, seq_len] batch this process holds."""
  index_map = batch_sharding(mesh).addressable_devices_indices_map((batch_size, seq_len))
  rows = sorted({(idx[0].start or 0, batch_size if idx[0].stop is None else idx[0].stop)
                 for idx in index_map.values()})
  start, stop = rows[0][0], rows[-1][1]
  if sum(b - a for a, b in rows) != stop - start:
    raise ValueError(f"this process's devices hold non-contiguous batch rows {rows}; order "
                     "the mesh devices by process")
  return start, stop


def task_of(config):
  """The run's synthetic task (config.data.task), or None for a text corpus."""
  data = run_config(config).data
  if not data.task:
    return None
  from xlstm_jax.tasks import make_task  # noqa: PLC0415 (text runs never need it)
  return make_task(data.task, **data.task_kwargs)


def vocab_size(config, tokenizer) -> int:
  """The vocabulary the model must cover: the task's, or the tokenizer's."""
  task = task_of(config)
  return tokenizer.vocab_size if task is None else task.vocab_size


def _task_sources(config: RunConfig, task) -> tuple:
  from xlstm_jax.tasks import TaskSource, split_stream  # noqa: PLC0415
  d = config.data
  accum = config.optimizer.grad_accum_steps
  train = TaskSource(task, config.num_steps * config.batch_size * accum,
                     tuple(d.train_lengths), config.seq_len,
                     seed=split_stream(config.seed, "train"), curriculum=d.curriculum)
  val = TaskSource(task, max(config.eval_batches, 1) * config.batch_size, tuple(d.val_lengths),
                   config.seq_len, seed=split_stream(config.seed, "validation"))
  return train, val


def sources(config, tokenizer, train: bool = True) -> tuple:
  """(train, val or None) random-access sources of examples for the config; with
  train=False the first is None and a raw corpus's training documents are not tokenized."""
  config = run_config(config)
  task = task_of(config)
  if task is not None:
    return _task_sources(config, task)
  spec = config.data.corpus
  if prepare.is_prepared(spec):
    meta, splits = prepare.open_prepared(spec)
    if meta["seq_len"] != config.seq_len:
      raise ValueError(f"{spec} was prepared with seq_len={meta['seq_len']}, but the run has "
                       f"seq_len={config.seq_len}; prepare it again or set "
                       f"--config.seq_len={meta['seq_len']}")
    if meta["tokenizer"] != config.data.tokenizer:
      raise ValueError(f"{spec} was prepared with tokenizer {meta['tokenizer']!r}, but the run "
                       f"has data.tokenizer={config.data.tokenizer!r}")
    if train and splits["train"] is None:
      raise ValueError(f"{spec} has no training examples")
    return (splits["train"] if train else None), splits["val"]
  docs = data_lib.load_documents(spec)
  train_docs, val_docs = data_lib.split_documents(docs, config.data.val_fraction,
                                                  split_seed(config))
  encode = lambda ds: data_lib.PackedArrays(data_lib.pack(  # noqa: E731
      [tokenizer.encode(d) for d in ds], config.seq_len, tokenizer.eos_id))
  return (encode(train_docs) if train else None), (encode(val_docs) if val_docs else None)


def split_seed(config) -> int:
  """The seed of the train/validation document split: data.split_seed, so runs that differ
  only in `seed` (init and data order) are scored on the same held-out text. Workdirs
  written before the field existed (split_seed None) split with `seed`, and keep doing so."""
  config = run_config(config)
  return config.seed if config.data.split_seed is None else config.data.split_seed


def datasets(config, tokenizer, mesh: Mesh, train: bool = True) -> tuple:
  """(train, val or None) grain datasets yielding this host's rows of each global batch
  (train=False: (None, val), for evaluation)."""
  config = run_config(config)
  train_src, val_src = sources(config, tokenizer, train)
  rows = host_rows(mesh, config.batch_size, config.seq_len)
  # task examples are independent draws: read in order, so a length curriculum holds
  train_ds = None if train_src is None else data_lib.make_dataset(
      train_src, config.batch_size, seed=config.seed, rows=rows,
      shuffle=task_of(config) is None)
  val = None
  if val_src is not None and config.eval_every:
    if len(val_src) < config.batch_size:
      raise ValueError(f"the validation split has {len(val_src)} examples, fewer than one "
                       f"batch of {config.batch_size}; raise data.val_fraction or set "
                       "eval_every=0")
    val = data_lib.make_dataset(val_src, config.batch_size, shuffle=False, num_epochs=1,
                                rows=rows)
  return train_ds, val


def global_batch(local: dict, mesh: Mesh) -> dict:
  """The global {"inputs", "targets"} (+ "mask" if the data has one) from this host's rows."""
  s = batch_sharding(mesh)
  out = {k: jax.make_array_from_process_local_data(s, np.asarray(local[k], np.int32))
         for k in ("inputs", "targets")}
  if "mask" in local:
    out["mask"] = jax.make_array_from_process_local_data(s, np.asarray(local["mask"], bool))
  return out
