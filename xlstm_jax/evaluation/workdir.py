"""Evaluation of a finished run's workdir (behind `python -m xlstm_jax.eval`):
evaluate_workdir (validation loss, perplexity and accuracy; synthetic-task accuracy per test
length; length extrapolation and text samples of text runs) and report_lines. The in-loop
validation loss (make_eval_loss, evaluate) is training's own: xlstm_jax.training.evaluate."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence

import jax
import numpy as np

from xlstm_jax import sharding
from xlstm_jax.data import load_documents, load_tokenizer, prepare, split_documents
from xlstm_jax.evaluation import (DEFAULT_PROMPTS, check_factors, document_stream,
                                  extrapolation_curve, length_accuracy, packed_stream,
                                  text_samples)
from xlstm_jax.tasks.seeds import split_stream
from xlstm_jax.training.config import run_config
from xlstm_jax.training.data import datasets, split_seed, task_of
from xlstm_jax.training.evaluate import evaluate, make_eval_loss
from xlstm_jax.training.restore import restore_model


def evaluate_workdir(workdir, corpus: str | None = None, max_batches: int | None = None, *,
                     extrapolate: Sequence[int] | None = None,
                     extrapolate_sequences: int | None = None, samples: int = 0,
                     prompts: Sequence[str] | None = None, max_new_tokens: int = 64,
                     temperature: float = 0.0, plot: bool = False) -> dict:
  """Restores the newest good checkpoint of a run and evaluates it.

  The run's config.json (written by train.py) gives the model, data and mesh. A text run
  is evaluated on its validation split (`corpus` replaces data.corpus; same seed and
  fraction): {"step", "eval_loss", "eval_perplexity", "eval_accuracy", "eval_batches",
  "corpus"}, and with
    extrapolate (factors, e.g. (1, 2, 4, 8, 16)): "extrapolation", the perplexity on
      sequences of factor x seq_len validation tokens (`evaluation.extrapolation_curve`,
      at most `extrapolate_sequences` sequences of the largest factor; None: all);
    samples > 0: "samples", that many [{"prompt", "completion"}], cycling through
      `prompts` (None: a few short defaults), `max_new_tokens` each at `temperature`.
  A synthetic-task run (data.task) is evaluated at every test length (data.test_lengths,
  data.test_examples each): {"step", "task", "accuracy", "scaled_accuracy", "per_length",
  "test_lengths", "test_examples", "train_lengths"}.
  `plot` writes the figures of what was evaluated into workdir (length_accuracy.png for a
  task run, extrapolation.png with `extrapolate`) and lists them under "plots" ({name: path}).
  """
  workdir = pathlib.Path(workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise ValueError(f"{workdir} has no config.json; is it the workdir of a train.py run?")
  config = run_config(json.loads(config_path.read_text()))
  if corpus is not None:
    config = config.replace(data=dataclasses.replace(config.data, corpus=corpus))
  # datasets() builds the val split only with eval_every > 0
  config = config.replace(eval_every=max(config.eval_every, 1))
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
  task = task_of(config)
  if task is not None and (extrapolate or samples):
    raise ValueError(f"extrapolate={extrapolate!r} and samples={samples!r} are for text runs; "
                     f"{workdir} trained on the synthetic task {config.data.task!r}")
  if not isinstance(samples, int) or samples < 0:
    raise ValueError(f"samples={samples!r} must be an int >= 0")
  if extrapolate:
    check_factors(extrapolate)  # fail before the checkpoint restores and the eval runs
  if task is None:
    tokenizer = load_tokenizer(config.data.tokenizer)
    _, val_ds = datasets(config, tokenizer, mesh, train=False)
    if val_ds is None:
      raise ValueError(f"corpus {config.data.corpus!r} has no validation split (val_fraction="
                       f"{config.data.val_fraction})")
  model, params, step = restore_model(config, workdir, mesh)
  if task is not None:
    result = {"step": step, "task": config.data.task,
              **_task_eval(model, params, task, config)}
  else:
    result = evaluate(make_eval_loss(model, mesh), params, val_ds, mesh, max_batches)
    result = {"step": step, **result, "corpus": config.data.corpus}
    if extrapolate:
      needed = (None if extrapolate_sequences is None
                else max(extrapolate) * config.seq_len * extrapolate_sequences + 1)
      result["extrapolation"] = extrapolation_curve(
          model, params, validation_stream(config, tokenizer, needed), config.seq_len,
          extrapolate, extrapolate_sequences, batch_size=config.batch_size,
          progress=_progress_bar("extrapolation windows"))
    if samples:
      chosen = list(prompts or DEFAULT_PROMPTS)
      result["samples"] = text_samples(model, params, tokenizer,
                                       [chosen[j % len(chosen)] for j in range(samples)],
                                       max_new_tokens, temperature, seed=config.seed)
  if plot:
    result["plots"] = _plot(result, workdir, config)
  return result


def _plot(result: dict, workdir: pathlib.Path, config) -> dict[str, str]:
  """Writes the figures of an evaluate_workdir result into workdir: {name: path}."""
  from xlstm_jax.evaluation import plots  # noqa: PLC0415 (matplotlib only when plotting)
  step = result["step"]
  figures = {}
  if "per_length" in result:
    figures["length_accuracy"] = plots.plot_length_accuracy(
        {f"{config.model.arch}, step {step}": result}, workdir / "length_accuracy.png",
        title=f"{config.data.task}: scaled accuracy per test length")
  if "extrapolation" in result:
    figures["extrapolation"] = plots.plot_extrapolation(
        result["extrapolation"], workdir / "extrapolation.png",
        title=f"{config.model.arch}, step {step}: perplexity per position")
  return {name: str(path) for name, path in figures.items()}


def validation_stream(config, tokenizer, max_tokens: int | None = None) -> np.ndarray:
  """The run's validation text as one token stream: the held-out documents (same split as
  training) each followed by EOS, or the stitched rows of a prepared corpus's val split
  (read up to `max_tokens`; None: all)."""
  spec = config.data.corpus
  if prepare.is_prepared(spec):
    val = prepare.open_prepared(spec)[1]["val"]
    if val is None:
      raise ValueError(f"the prepared corpus {spec} has no validation split")
    return packed_stream(val, max_tokens)
  _, val_docs = split_documents(load_documents(spec), config.data.val_fraction,
                                split_seed(config))
  return document_stream([tokenizer.encode(d) for d in val_docs], tokenizer.eos_id)


def _progress_bar(label: str):
  """A progress(i, n) callback redrawing "label i/n" on one stderr line, ending it at n."""
  return lambda i, n: sys.stderr.write(f"\r{label} {i}/{n}" + "\n" * (i == n))


def _task_eval(model, params, task, config) -> dict:
  """Accuracy over every test length of config.data.test_lengths (inclusive)."""
  lo, hi = config.data.test_lengths
  logits_fn = jax.jit(lambda tokens: model.apply({"params": params}, tokens))
  result = length_accuracy(logits_fn, task, range(lo, hi + 1), config.data.test_examples,
                           seed=split_stream(config.seed, "test"),
                           progress=_progress_bar("test lengths"))
  return {**result, "test_lengths": [lo, hi], "test_examples": config.data.test_examples,
          "train_lengths": list(config.data.train_lengths)}


def report_lines(result: dict) -> list[str]:
  """Human-readable lines of an evaluate_workdir result (what eval.py prints)."""
  if "task" in result:
    lo, hi = result["test_lengths"]
    lines = [f"step {result['step']}: {result['task']} scaled accuracy "
             f"{result['scaled_accuracy']:.3f} (accuracy {result['accuracy']:.3f}) over test "
             f"lengths {lo}..{hi}, {result['test_examples']} examples each"]
  else:
    lines = [f"step {result['step']}: eval loss {result['eval_loss']:.4f}, perplexity "
             f"{result['eval_perplexity']:.3f} over {result['eval_batches']} batches of "
             f"{result['corpus']}"]
  if "extrapolation" in result:
    ex = result["extrapolation"]
    C = ex["context"]
    lines.append(f"length extrapolation, trained at context {C} ({ex['tokens']} tokens scored "
                 "per factor):")
    for f, r in ex["factors"].items():
      lines.append(f"  {int(f):>3}x ({int(f) * C} tokens, {r['sequences']} sequences): "
                   f"perplexity {r['perplexity']:.3f} = {r['ratio_to_1x']:.3f} x 1x; last "
                   f"bucket {r['bucket_perplexity'][-1]:.3f} = "
                   f"{r['last_bucket_ratio_to_1x']:.3f} x 1x")
    within = ex["max_factor_within"]
    lines.append(f"  within {ex['tolerance']:.0%} of the 1x perplexity up to "
                 f"{within['overall']}x overall, {within['last_bucket']}x in the last bucket")
  for s in result.get("samples", []):
    lines.append(f"--- sample, prompt {s['prompt']!r}:\n{s['prompt']}{s['completion']}")
  lines.extend(f"wrote {path}" for path in result.get("plots", {}).values())
  return lines
