"""Summary of the issue-21 runs (docs/results/issue21_runs.sh): a markdown table and plots.

  PYTHONPATH=. python docs/results/issue21_summary.py /work/runs/science docs/results/issue21

For every run directory under RUNS: the last step trained, its last validation accuracy
(in distribution), whether it stopped early, and eval.py's scaled accuracy if it was
evaluated; the wall times come from RUNS/runs.tsv. Writes OUT/validation.png (validation
accuracy against step, one line per run) and OUT/<task>_length_accuracy.png (scaled
accuracy per test length of the evaluated formal runs), and prints the table.
"""

import json
import pathlib
import sys

from xlstm_jax.evaluation.plots import plot_length_accuracy, plot_validation_curves


def _records(run: pathlib.Path) -> list[dict]:
  path = run / "metrics.jsonl"
  return [json.loads(line) for line in path.open()] if path.exists() else []


def summarize(runs: pathlib.Path, out: pathlib.Path) -> str:
  """The markdown table of every run under `runs`; writes the plots to `out`."""
  walls = {}
  if (runs / "runs.tsv").exists():
    for line in (runs / "runs.tsv").read_text().splitlines():
      name, start, end, steps, machine = line.split("\t")
      walls[name] = f"{start} .. {end} ({machine})"
  rows = ["| run | steps | last validation accuracy | early stop | test scaled accuracy | "
          "wall |", "|---|---:|---:|---|---:|---|"]
  curves, evals_by_task = {}, {}
  for run in sorted(p for p in runs.iterdir() if p.is_dir()):
    recs = _records(run)
    if not recs:
      continue
    val = [(r["step"], r["eval_accuracy"]) for r in recs if "eval_accuracy" in r]
    curves[run.name] = val
    ev = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else None
    if ev and "per_length" in ev:
      evals_by_task.setdefault(ev["task"], {})[run.name] = ev
    stopped = "yes" if any("early_stop" in r for r in recs) else "no"
    last_val = f"{val[-1][1]:.3f}" if val else "-"
    test = f"{ev['scaled_accuracy']:.3f}" if ev else "not evaluated"
    rows.append(f"| {run.name} | {max(r['step'] for r in recs)} | {last_val} | {stopped} | "
                f"{test} |")
    rows[-1] += f" {walls.get(run.name, 'running or stopped')} |"
  if any(curves.values()):
    plot_validation_curves(curves, out / "validation.png",
                           "validation accuracy (in distribution) in training")
  for task, evals in evals_by_task.items():
    plot_length_accuracy(evals, out / f"{task}_length_accuracy.png", title=task)
  return "\n".join(rows)


if __name__ == "__main__":
  if len(sys.argv) != 3:
    raise SystemExit(__doc__)
  print(summarize(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])))
