"""The in-loop validation of a training run: the loss, perplexity and accuracy over the
validation batches (the evaluation of a finished run's workdir is xlstm_jax.evaluation.workdir)."""

from __future__ import annotations

import contextlib
import math

import jax
import numpy as np

from xlstm_jax import sharding
from xlstm_jax.training.data import global_batch
from xlstm_jax.training.step import accuracy, cross_entropy


def make_eval_loss(model, mesh=None):
  """A jitted (params, batch) -> (loss, accuracy) of the batch, over its mask if it has one.
  With `mesh`, the model's activations are sharded by the table, as in the train step."""
  def eval_loss(params, batch):
    with sharding.activation_sharding(mesh) if mesh is not None else contextlib.nullcontext():
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
