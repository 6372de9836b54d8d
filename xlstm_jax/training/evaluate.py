"""Evaluation of a run: validation loss, perplexity and accuracy; synthetic-task accuracy per
test length (evaluate_workdir, behind eval.py)."""

from __future__ import annotations

import json
import math
import pathlib
import sys

import jax
import ml_collections
import numpy as np

from xlstm_jax import sharding
from xlstm_jax.data import load_tokenizer
from xlstm_jax.evaluation import length_accuracy
from xlstm_jax.nn import LanguageModel, ModelConfig
from xlstm_jax.training.checkpoint import Checkpointer
from xlstm_jax.training.data import datasets, global_batch, task_of
from xlstm_jax.training.optimizer import OptimizerConfig, make_optimizer
from xlstm_jax.training.step import abstract_train_state, accuracy, cross_entropy


def make_eval_loss(model):
  """A jitted (params, batch) -> (loss, accuracy) of the batch, over its mask if it has one."""
  def eval_loss(params, batch):
    logits = model.apply({"params": params}, batch["inputs"])
    mask = batch.get("mask")
    return (cross_entropy(logits, batch["targets"], mask),
            accuracy(logits, batch["targets"], mask))
  return jax.jit(eval_loss)


def evaluate(eval_loss, params, val_ds, mesh, max_batches: int | None = None) -> dict:
  """{"eval_loss", "eval_perplexity", "eval_accuracy", "eval_batches"} over the first
  `max_batches` global batches of `val_ds` (None: all of them). Every batch has the same
  size, so the mean of the batch means is the mean over all tokens (for unmasked data)."""
  results = []
  for batch in val_ds:
    if max_batches is not None and len(results) >= max_batches:
      break
    results.append([float(x) for x in eval_loss(params, global_batch(batch, mesh))])
  if not results:
    raise ValueError("the validation dataset yielded no batches")
  loss, acc = np.mean(results, axis=0).tolist()
  return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0)),
          "eval_accuracy": acc, "eval_batches": len(results)}


def evaluate_workdir(workdir, corpus: str | None = None, max_batches: int | None = None) -> dict:
  """Restores the newest good checkpoint of a run and evaluates it.

  The run's config.json (written by train.py) gives the model, data and mesh. A text run
  is evaluated on its validation split (`corpus` replaces data.corpus; same seed and
  fraction): {"step", "eval_loss", "eval_perplexity", "eval_accuracy", "eval_batches",
  "corpus"}. A synthetic-task run (data.task) is evaluated at every test length
  (data.test_lengths, data.test_examples each): {"step", "task", "accuracy",
  "scaled_accuracy", "per_length", "test_lengths", "test_examples"}.
  """
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise ValueError(f"{workdir} has no config.json; is it the workdir of a train.py run?")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  if corpus is not None:
    config.data.corpus = corpus
  config.eval_every = max(config.eval_every, 1)  # datasets() builds the val split only then
  model = LanguageModel(ModelConfig.from_dict(config.model))
  tx = make_optimizer(OptimizerConfig(num_steps=config.num_steps, **config.optimizer))
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
  task = task_of(config)
  if task is None:
    _, val_ds = datasets(config, load_tokenizer(config.data.tokenizer), mesh)
    if val_ds is None:
      raise ValueError(f"corpus {config.data.corpus!r} has no validation split (val_fraction="
                       f"{config.data.val_fraction})")
  abstract, _ = abstract_train_state(model, tx, mesh, config.seq_len)
  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints, async_save=False)
  try:
    restored = ckpt.restore_latest(abstract, move_corrupt=False)
  finally:
    ckpt.close()
  if restored is None:
    raise ValueError(f"no checkpoint in {workdir / 'checkpoints'} restores")
  step, state, _ = restored
  if task is not None:
    return {"step": int(step), "task": config.data.task,
            **_task_eval(model, state.params, task, config)}
  result = evaluate(make_eval_loss(model), state.params, val_ds, mesh, max_batches)
  return {"step": int(step), **result, "corpus": config.data.corpus}


def _task_eval(model, params, task, config) -> dict:
  """Accuracy over every test length of config.data.test_lengths (inclusive)."""
  lo, hi = config.data.test_lengths
  logits_fn = jax.jit(lambda tokens: model.apply({"params": params}, tokens))
  report = lambda i, n: sys.stderr.write(f"\rtest lengths {i}/{n}" + "\n" * (i == n))  # noqa: E731
  result = length_accuracy(logits_fn, task, range(lo, hi + 1), config.data.test_examples,
                           seed=config.seed + 2, progress=report)
  return {**result, "test_lengths": [lo, hi], "test_examples": config.data.test_examples}
