"""The training loop behind train.py: data, sharded state, resume, metrics, checkpoints.

The loop dispatches step N before it reads the metrics of step N-1, so the host never
waits on the device except at checkpoints and evaluations. A NaN/Inf loss stops the run
with an error; checkpoints are only written after the step's loss was checked, so the
last checkpoint is always a good one.
"""

from __future__ import annotations

import logging
import math
import pathlib
import time

import jax
import numpy as np

from xlstm_jax import data as data_lib
from xlstm_jax import sharding
from xlstm_jax.nn import LanguageModel, ModelConfig
from xlstm_jax.training.checkpoint import Checkpointer, abstract_like
from xlstm_jax.training.metrics import MetricsWriter, Progress
from xlstm_jax.training.optimizer import OptimizerConfig, lr_schedule, make_optimizer
from xlstm_jax.training.step import (batch_sharding, cross_entropy, init_train_state,
                                     make_train_step)


def _check(config, model_cfg: ModelConfig, mesh, tokenizer) -> None:
  """Errors that must come before any compute, each naming the values."""
  dp = mesh.shape["data"] * mesh.shape["fsdp"]
  if config.batch_size % dp:
    raise ValueError(f"batch_size={config.batch_size} is not divisible by the data-parallel "
                     f"mesh size data*fsdp={dp}")
  if config.batch_size % jax.process_count():
    raise ValueError(f"batch_size={config.batch_size} is not divisible by the "
                     f"{jax.process_count()} processes")
  if model_cfg.vocab_size < tokenizer.vocab_size:
    raise ValueError(f"model.vocab_size={model_cfg.vocab_size} is smaller than the "
                     f"tokenizer's {tokenizer.vocab_size}")
  for name in ("num_steps", "seq_len", "log_every", "checkpoint_every"):
    if config[name] < 1:
      raise ValueError(f"{name}={config[name]} must be >= 1")


def _datasets(config, tokenizer):
  docs = data_lib.load_documents(config.data.corpus)
  train_docs, val_docs = data_lib.split_documents(docs, config.data.val_fraction, config.seed)
  encode = lambda ds: data_lib.pack([tokenizer.encode(d) for d in ds], config.seq_len,
                                    tokenizer.eos_id)
  local_batch = config.batch_size // jax.process_count()
  train = data_lib.make_dataset(encode(train_docs), local_batch, seed=config.seed,
                                shard_index=jax.process_index(),
                                shard_count=jax.process_count())
  val = None
  if val_docs and config.eval_every:
    val = data_lib.make_dataset(encode(val_docs), local_batch, shuffle=False, num_epochs=1,
                                shard_index=jax.process_index(),
                                shard_count=jax.process_count())
  return train, val


def _global_batch(local: dict, mesh) -> dict:
  s = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(s, np.asarray(local[k], np.int32))
          for k in ("inputs", "targets")}


def train(config, workdir) -> dict:
  """Runs (or resumes) the run in `workdir`; returns the last logged metrics."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  model_cfg = ModelConfig.from_dict(config.model)
  tokenizer = data_lib.ByteTokenizer()
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
  _check(config, model_cfg, mesh, tokenizer)
  opt_cfg = OptimizerConfig(num_steps=config.num_steps, **config.optimizer)
  train_ds, val_ds = _datasets(config, tokenizer)
  model, tx = LanguageModel(model_cfg), make_optimizer(opt_cfg)
  state, shardings = init_train_state(model, tx, jax.random.key(config.seed), mesh,
                                      config.seq_len)
  train_step = make_train_step(model, tx, mesh, shardings)
  batches = iter(train_ds)
  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
  restored = ckpt.restore_latest(abstract_like(state))
  if restored is not None:
    step, state, data_state = restored
    batches.set_state(data_state)
    logging.info("resumed from step %d of %s", step, workdir)
  step = int(state.step)
  writer, progress = MetricsWriter(workdir), Progress(step, config.num_steps)
  schedule = lr_schedule(opt_cfg)
  eval_loss = jax.jit(lambda p, b: cross_entropy(model.apply({"params": p}, b["inputs"]),
                                                 b["targets"]))
  pending, last = None, {}
  meter = _Throughput(step, config.batch_size * config.seq_len)
  try:
    while step < config.num_steps:
      state, metrics = train_step(state, _global_batch(next(batches), mesh))
      step += 1
      if pending is not None:  # the previous step's metrics, read while this one runs
        last = _log(pending, writer, progress, schedule, meter, config)
      pending = (step, metrics)
      if step % config.checkpoint_every == 0 or step == config.num_steps:
        last = _log(pending, writer, progress, schedule, meter, config)
        pending = None
        ckpt.save(step, state, batches.get_state())
      if val_ds is not None and step % config.eval_every == 0:
        losses = [float(eval_loss(state.params, _global_batch(b, mesh)))
                  for b, _ in zip(iter(val_ds), range(config.eval_batches))]
        val = float(np.mean(losses))
        writer.write(step, {"eval_loss": val, "eval_perplexity": math.exp(min(val, 50.0))})
        last["eval_loss"] = val
    if pending is not None:
      last = _log(pending, writer, progress, schedule, meter, config)
  finally:
    progress.close()
    ckpt.close()
    writer.close()
  return last


class _Throughput:
  """Tokens/s between logged steps, clocked when their losses are read: reading step N's
  loss waits for step N, so the clock measures finished steps, not dispatched ones."""

  def __init__(self, step: int, tokens_per_step: int):
    self.step, self.time, self.tokens_per_step = step, time.perf_counter(), tokens_per_step

  def read(self, step: int) -> float:
    now = time.perf_counter()
    rate = (step - self.step) * self.tokens_per_step / max(now - self.time, 1e-9)
    self.step, self.time = step, now
    return rate


def _log(pending, writer, progress, schedule, meter: _Throughput, config) -> dict:
  """Reads a step's metrics (a device sync), stops on NaN/Inf, writes every log_every."""
  step, metrics = pending
  loss = float(metrics["loss"])
  if not math.isfinite(loss):
    raise FloatingPointError(f"loss is {loss} at step {step}: stopping; the last checkpoint "
                             "(written before this step) is intact")
  progress.update(step, loss)
  out = {"loss": loss, "grad_norm": float(metrics["grad_norm"])}
  if step % config.log_every == 0 or step == config.num_steps:
    out.update(perplexity=math.exp(min(loss, 50.0)), learning_rate=float(schedule(step - 1)),
               tokens_per_s=meter.read(step))  # averaged since the last logged step
    writer.write(step, out)
  return out
