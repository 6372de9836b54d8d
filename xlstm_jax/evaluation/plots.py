"""PNG figures of evaluation results (matplotlib, no pyplot: the caller's backend is untouched).

  plot_extrapolation(result, "runs/x/extrapolation.png")       # one model, every factor
  plot_extrapolation_models({"xLSTM": a, "Llama": b}, "ppl_vs_position.png")
  plot_length_accuracy({"sLSTM": eval_a, "Llama": eval_b}, "parity.png", title="parity")
  plot_mqar_grid({"xLSTM[1:1]": {(64, 8): 1.0, (128, 16): 0.9}}, "mqar_grid.png")
  plot_validation_curves({"sLSTM": [(200, 0.5), (400, 0.9)]}, "curves.png")

`result` is an `extrapolation_curve` result and an eval result is what eval.py writes for a
synthetic-task run (its "per_length"); both may come straight from JSON (string keys).
Each function writes the PNG (making its folder) and returns its path.
"""

from __future__ import annotations

import pathlib

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from xlstm_jax.plotting import save_figure


def _by_int_key(d: dict) -> list[tuple[int, object]]:
  """Items of a dict whose keys are ints or their JSON strings, in numeric order."""
  return sorted(((int(k), v) for k, v in d.items()), key=lambda kv: kv[0])


def _positions(context: int, buckets: int) -> list[float]:
  """Bucket midpoints in tokens: bucket b spans positions [b*C, (b+1)*C)."""
  return [(b + 0.5) * context for b in range(buckets)]


def plot_extrapolation(result: dict, path, log_x: bool = True,
                       title: str | None = None) -> pathlib.Path:
  """Perplexity per position bucket, one line per factor, with the training context C (a
  vertical line) and 1 + tolerance times the 1x perplexity (a horizontal line)."""
  C = int(result["context"])
  fig = Figure(figsize=(7, 4.5), layout="constrained")
  ax = fig.add_subplot()
  for f, r in _by_int_key(result["factors"]):
    ppl = r["bucket_perplexity"]
    ax.plot(_positions(C, len(ppl)), ppl, marker="o", markersize=3,
            label=f"{f}x ({f * C} tokens): {r['perplexity']:.3g}")
  base = _by_int_key(result["factors"])[0][1]["perplexity"]
  tol = float(result.get("tolerance", 0.1))
  ax.axvline(C, color="gray", linestyle="--", linewidth=1, label=f"training context {C}")
  ax.axhline(base * (1 + tol), color="gray", linestyle=":", linewidth=1,
             label=f"1x perplexity + {tol:.0%}")
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel("position in the sequence (tokens, bucket midpoints)")
  ax.set_ylabel(f"perplexity per bucket of {C} positions")
  ax.set_title(title or f"length extrapolation, trained at context {C}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save_figure(fig, path)


def plot_extrapolation_models(results: dict[str, dict], path, factor: int | None = None,
                              log_x: bool = True, title: str | None = None) -> pathlib.Path:
  """Perplexity per position bucket of several models (label -> extrapolation result) at
  one `factor` (default: the largest factor every result has), as in the xLSTM paper's
  extrapolation figure."""
  if not results:
    raise ValueError("results is empty: give at least one label -> extrapolation result")
  common = set.intersection(*({int(f) for f in r["factors"]} for r in results.values()))
  factor = max(common) if factor is None else int(factor)
  if factor not in common:
    raise ValueError(f"factor={factor} is not in every result; common factors: "
                     f"{sorted(common)}")
  fig = Figure(figsize=(7, 4.5), layout="constrained")
  ax = fig.add_subplot()
  contexts = set()
  for label, r in results.items():
    C = int(r["context"])
    contexts.add(C)
    ppl = dict(_by_int_key(r["factors"]))[factor]["bucket_perplexity"]
    ax.plot(_positions(C, len(ppl)), ppl, marker="o", markersize=3, label=label)
  for C in sorted(contexts):
    ax.axvline(C, color="gray", linestyle="--", linewidth=1)
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel("position in the sequence (tokens, bucket midpoints; dashed: training context)")
  ax.set_ylabel("perplexity per bucket")
  ax.set_title(title or f"perplexity at {factor}x the training context")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save_figure(fig, path)


def plot_length_accuracy(results: dict[str, dict], path, title: str | None = None,
                         train_range: tuple[int, int] | None = None) -> pathlib.Path:
  """Scaled accuracy (0 chance, 1 perfect) against test length, one line per model
  (label -> eval result with "per_length"), the training lengths shaded (`train_range`, or
  the first result's "train_lengths")."""
  if not results:
    raise ValueError("results is empty: give at least one label -> eval result")
  fig = Figure(figsize=(7, 4.5), layout="constrained")
  ax = fig.add_subplot()
  for label, r in results.items():
    if "per_length" not in r:
      raise ValueError(f"result {label!r} has no 'per_length' (keys {sorted(r)}); is it the "
                       "eval of a synthetic-task run?")
    items = _by_int_key(r["per_length"])
    ax.plot([L for L, _ in items], [a["scaled_accuracy"] for _, a in items],
            label=f"{label}: {r.get('scaled_accuracy', float('nan')):.3f}")
  if train_range is None:
    train_range = next((r["train_lengths"] for r in results.values() if "train_lengths" in r),
                       None)
  if train_range is not None:
    lo, hi = train_range
    ax.axvspan(lo, hi, color="gray", alpha=0.15, label=f"training lengths {lo}..{hi}")
  ax.axhline(0.0, color="gray", linewidth=0.8)
  ax.axhline(1.0, color="gray", linewidth=0.8, linestyle=":")
  ax.set_xlabel("sequence length")
  ax.set_ylabel("scaled accuracy (0 chance, 1 perfect)")
  ax.set_title(title or "accuracy per test length")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save_figure(fig, path)


def plot_validation_curves(curves: dict[str, list[tuple[int, float]]], path,
                           title: str | None = None) -> pathlib.Path:
  """Validation accuracy against training step, one line per run (label -> [(step,
  accuracy)], e.g. the "eval_accuracy" entries of a run's metrics.jsonl)."""
  curves = {label: c for label, c in curves.items() if c}
  if not curves:
    raise ValueError("curves has no points: give at least one label -> [(step, accuracy)]")
  fig = Figure(figsize=(7, 4.5), layout="constrained")
  ax = fig.add_subplot()
  for label, points in curves.items():
    steps, accuracy = zip(*sorted(points))
    ax.plot(steps, accuracy, label=label)
  ax.set_xlabel("training step")
  ax.set_ylabel("validation accuracy")
  ax.set_ylim(0.0, 1.02)
  ax.set_title(title or "validation accuracy during training")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return save_figure(fig, path)


def plot_mqar_grid(results: dict[str, dict[tuple[int, int], float]], path) -> pathlib.Path:
  """MQAR scaled accuracy against key-value pairs, one panel per context length (as the
  paper's Figure 5 has one per context), one line per model (label -> {(context, pairs):
  scaled accuracy}; cells a model lacks are left out)."""
  if not any(results.values()):
    raise ValueError("results has no cells: give at least one label -> {(context, pairs): x}")
  contexts = sorted({c for cells in results.values() for c, _ in cells})
  fig = Figure(figsize=(3.5 * len(contexts), 3.8), layout="constrained")
  axes = fig.subplots(1, len(contexts), sharey=True, squeeze=False)[0]
  colors = {label: f"C{i}" for i, label in enumerate(results)}   # one color per model
  for ax, context in zip(axes, contexts):
    for label, cells in results.items():
      points = sorted((p, x) for (c, p), x in cells.items() if c == context)
      if points:
        ax.plot([p for p, _ in points], [x for _, x in points], marker="o",
                color=colors[label], label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({p for cells in results.values() for c, p in cells if c == context}))
    ax.xaxis.set_major_formatter("{x:.0f}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_title(f"context {context}")
    ax.set_xlabel("key-value pairs")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("scaled accuracy (0 chance, 1 perfect)")
  fig.legend(handles=[Line2D([], [], color=colors[label], marker="o", label=label)
                      for label in results], loc="outside lower center", ncols=len(results),
             fontsize=8)
  return save_figure(fig, path)
