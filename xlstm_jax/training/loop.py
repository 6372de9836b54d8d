"""The training loop behind train.py: data, sharded state, resume, metrics, checkpoints.

The loop dispatches step N before it reads the metrics of step N-1, so the host never
waits on the device except at checkpoints and evaluations. A NaN/Inf loss stops the run
with an error; checkpoints are only written after the step's loss was checked, so the
last checkpoint is always a good one. A step is one optimizer update: with
optimizer.grad_accum_steps = k it reads k batches of batch_size (logged loss and accuracy
are their mean), so num_steps, the schedule and the checkpoint steps all count updates.

Two optional config fields end a run before num_steps, each after writing a checkpoint:
`stop_at_step` (> 0: pause there; the schedule still spans num_steps, so raising or
clearing it resumes the same run) and `early_stop_accuracy` with `early_stop_evals`
(stop once that many consecutive validations reached eval_accuracy >= the threshold;
the count restarts when a run resumes).
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import time

import jax

from xlstm_jax import sharding
from xlstm_jax.counting import peak_flops, train_flops_per_token
from xlstm_jax.data import load_tokenizer
from xlstm_jax.nn import LanguageModel, ModelConfig
from xlstm_jax.training.checkpoint import Checkpointer
from xlstm_jax.training.config import RunConfig, run_config
from xlstm_jax.training.console import Progress, summary
from xlstm_jax.training.data import datasets, global_batch, vocab_size
from xlstm_jax.training.evaluate import evaluate, make_eval_loss
from xlstm_jax.training.init_from import load_params, resolve_config
from xlstm_jax.training.metrics import MetricsWriter
from xlstm_jax.training.optimizer import lr_schedule, make_optimizer
from xlstm_jax.training.step import abstract_train_state, init_train_state, make_train_step
from xlstm_jax.training.workdir_lock import WorkdirLock


def _check(config: RunConfig, model_cfg: ModelConfig, mesh, vocab: int) -> None:
  """Errors that must come before any compute, each naming the values (the config's own
  field checks ran when it was built)."""
  sharding.check_batch_divisible(config.batch_size, mesh)
  if model_cfg.vocab_size < vocab:
    source = f"task {config.data.task!r}" if config.data.task else "tokenizer"
    raise ValueError(f"model.vocab_size={model_cfg.vocab_size} is smaller than the "
                     f"{source}'s {vocab}; set --config.model.vocab_size={vocab} (or more)")


def _save_config(config: RunConfig, workdir: pathlib.Path) -> None:
  """Writes config.json (eval.py reads it); says which fields a resumed run changed."""
  path = workdir / "config.json"
  new = json.loads(json.dumps(config.to_dict()))
  if path.exists():
    old = json.loads(path.read_text())
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
      logging.warning("config fields %s differ from the previous run in %s", changed, workdir)
  if jax.process_index() == 0:
    path.write_text(json.dumps(new, indent=2) + "\n")


def train(config, workdir) -> dict:
  """Runs (or resumes) the run in `workdir`; returns the last logged metrics. The workdir
  is created only after the config passed its checks, and is locked (one writer: see
  workdir_lock.py) for the rest of the run.

  `config`: a RunConfig, or the ConfigDict / dict it is built from (here, once)."""
  workdir = pathlib.Path(workdir)
  if not isinstance(config, RunConfig):  # --config.init_from: the checkpoint's model
    config = resolve_config(config)
  config = run_config(config)
  model_cfg = config.model
  tokenizer = load_tokenizer(config.data.tokenizer)
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
  _check(config, model_cfg, mesh, vocab_size(config, tokenizer))
  opt_cfg = config.optimizer
  train_ds, val_ds = datasets(config, tokenizer, mesh)
  workdir.mkdir(parents=True, exist_ok=True)
  with WorkdirLock(workdir, active=jax.process_index() == 0):
    return _run(config, workdir, model_cfg, opt_cfg, mesh, train_ds, val_ds)


def _run(config, workdir: pathlib.Path, model_cfg, opt_cfg, mesh, train_ds, val_ds) -> dict:
  """The body of `train` once the workdir is locked: restore, the loop, the summary."""
  _save_config(config, workdir)
  model, tx = LanguageModel(model_cfg), make_optimizer(opt_cfg)
  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
  batches = iter(train_ds)
  abstract, shardings = abstract_train_state(model, tx, mesh, config.seq_len)
  restored = ckpt.restore_latest(abstract)
  if restored is None:
    state, _ = init_train_state(model, tx, jax.random.key(config.seed), mesh, config.seq_len)
    state = load_params(config, state)  # --config.init_from's weights (no-op without it)
  else:
    _, state, data_state = restored
    batches.set_state(data_state)
    logging.info("resumed from step %d of %s", int(state.step), workdir)
  train_step = make_train_step(model, tx, mesh, shardings)
  accum = opt_cfg.grad_accum_steps   # micro-batches per optimizer step (optax.MultiSteps)
  step = int(state.step) // accum    # state.step counts micro-batches
  writer, progress = MetricsWriter(workdir, resume_step=step), Progress(step, config.num_steps)
  eval_loss = make_eval_loss(model, mesh)
  meter = _Throughput(step, config, model_cfg)
  log = lambda pending: _log(pending, writer, progress, lr_schedule(opt_cfg), meter, config)  # noqa: E731
  pending, last, saved_at = None, {}, step
  first, start, evaluated = step, time.perf_counter(), {}
  stop_at = config.stop_at_step or config.num_steps
  stopper = _EarlyStop(config.early_stop_accuracy, config.early_stop_evals)
  try:
    while step < min(stop_at, config.num_steps):
      micro = []
      for _ in range(accum):
        state, metrics = train_step(state, global_batch(next(batches), mesh))
        micro.append(metrics)
      metrics = jax.tree.map(lambda *m: sum(m) / accum, *micro) if accum > 1 else metrics
      step += 1
      ckpt.poll()   # the previous save's manifest, once that save has finished
      if pending is not None:  # the previous step's metrics, read while this one runs
        last = log(pending)
      pending = (step, metrics)
      if step % config.checkpoint_every == 0 or step in (config.num_steps, stop_at):
        last, pending = log(pending), None
        ckpt.save(step, state, batches.get_state())
        saved_at = step
      if val_ds is not None and step % config.eval_every == 0:
        result = evaluate(eval_loss, state.params, val_ds, mesh, config.eval_batches)
        writer.write(step, result)
        progress.evaluation(step, result)
        last.update(result)
        evaluated = result
        if stopper.done(result["eval_accuracy"]):
          if pending is not None:
            last.update(log(pending))
            pending = None
          if saved_at != step:
            ckpt.save(step, state, batches.get_state())
          writer.write(step, {"early_stop": 1.0})
          logging.info("early stop at step %d: %d validations at accuracy >= %s", step,
                       stopper.evals, stopper.threshold)
          break
    if pending is not None:
      last = log(pending)
  except FloatingPointError as err:
    raise FloatingPointError(f"{err}; {ckpt.after_nan()}") from None
  finally:
    progress.close()
    ckpt.close()
    writer.close()
  summary(workdir, (first, step), (step - first) * meter.tokens_per_step,
          time.perf_counter() - start, last.get("loss"), evaluated.get("eval_loss"))
  return last


class _EarlyStop:
  """Counts consecutive validations with accuracy >= threshold; done() once `evals` did
  (evals == 0: never)."""

  def __init__(self, threshold: float, evals: int):  # checked by RunConfig
    self.threshold, self.evals, self.count = threshold, evals, 0

  def done(self, accuracy: float) -> bool:
    if self.evals == 0:
      return False
    self.count = self.count + 1 if accuracy >= self.threshold else 0
    return self.count >= self.evals


class _Throughput:
  """Tokens/s and MFU between logged steps, clocked when their losses are read: reading step
  N's loss waits for step N, so the clock measures finished steps, not dispatched ones."""

  def __init__(self, step: int, config: RunConfig, model_cfg: ModelConfig):
    self.step, self.time = step, time.perf_counter()
    self.tokens_per_step = (config.batch_size * config.seq_len
                            * config.optimizer.grad_accum_steps)
    self.flops_per_token = train_flops_per_token(model_cfg, config.seq_len)
    peak = config.peak_tflops_per_device * 1e12 or peak_flops(jax.devices()[0],
                                                              model_cfg.dtype)
    self.peak = peak * jax.device_count() if peak else None

  def read(self, step: int) -> dict:
    now = time.perf_counter()
    rate = (step - self.step) * self.tokens_per_step / max(now - self.time, 1e-9)
    self.step, self.time = step, now
    out = {"tokens_per_s": rate, "model_tflops_per_s": rate * self.flops_per_token / 1e12}
    if self.peak:
      out["mfu"] = rate * self.flops_per_token / self.peak
    return out


def _log(pending, writer, progress, schedule, meter: _Throughput, config) -> dict:
  """Reads a step's metrics (a device sync), stops on NaN/Inf, writes every log_every."""
  step, metrics = pending
  loss = float(metrics["loss"])
  if not math.isfinite(loss):
    raise FloatingPointError(f"loss is {loss} at step {step}: stopping")
  progress.update(step, loss)
  out = {"loss": loss, "accuracy": float(metrics["accuracy"]),
         "grad_norm": float(metrics["grad_norm"])}
  if step % config.log_every == 0 or step == config.num_steps:
    out.update(perplexity=math.exp(min(loss, 50.0)), learning_rate=float(schedule(step - 1)),
               **meter.read(step))  # averaged since the last logged step
    writer.write(step, out)
  return out
