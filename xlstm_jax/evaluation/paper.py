"""The xLSTM paper's qualitative experiments at CPU size: run them, then write the report.

  python -m xlstm_jax.evaluation.paper --runs=runs/paper --jobs=2          # all tables
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --tables=revision
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --report_only     # tables + plots

Each run is a train.py run in RUNS/<table>/<name> followed by eval.py; a run with an
eval.json is done and skipped, an interrupted one resumes from its checkpoint, so the
command can be repeated until everything is in. The report, docs/results/
paper_reproduction.md by default, is written from the eval.json and config.json files
alone: every number in it comes from a run, and each finding is checked against the
threshold the issue states, reproduced or not.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import pathlib
import sys
import time

from xlstm_jax.scaling.sweep import train_and_eval

FORMAL_FAMILIES = ("slstm", "xlstm11", "mlstm", "llama")
LABELS = {"slstm": "xLSTM[0:1]", "xlstm11": "xLSTM[1:1]", "mlstm": "xLSTM[1:0]",
          "llama": "Llama", "lstm": "LSTM", "xlstm": "xLSTM[3:1]"}


@dataclasses.dataclass(frozen=True)
class Run:
  table: str
  name: str
  config: str                       # configs/<file>[:options], relative to the repo root
  overrides: tuple[str, ...] = ()   # extra train.py flags
  eval_args: tuple[str, ...] = ()   # extra eval.py flags


def experiments() -> dict[str, list[Run]]:
  """Every run of every table, with its CPU-sized settings."""
  formal = [Run("formal", f"{task}_{m}", f"configs/formal.py:task={task},model={m}")
            for task in ("parity", "modular_arithmetic") for m in FORMAL_FAMILIES]
  mqar = [Run("mqar", m, f"configs/mqar.py:model={m},context=64,pairs=8",
              ("--config.num_steps=3000",)) for m in ("xlstm11", "lstm", "mlstm", "llama")]
  nomix = ("--config.model.memory_mixing=False",)   # no recurrent R: gates see the input only
  revision = [Run("revision", f"{m}_{g}{tag}", f"configs/revision.py:model={m},igate={g}",
                  ("--config.num_steps=3000", *extra))
              for m, g, tag, extra in (("mlstm", "exp", "", ()), ("mlstm", "sigmoid", "", ()),
                                       ("slstm", "exp", "", ()), ("lstm", "sigmoid", "", ()),
                                       ("slstm", "exp", "_nomix", nomix),
                                       ("lstm", "sigmoid", "_nomix", nomix))]
  revision += [Run("revision", f"{m}_{g}_nomix_levels64",
                   f"configs/revision.py:model={m},igate={g},levels=64",
                   ("--config.num_steps=3000", *nomix))
               for m, g in (("slstm", "exp"), ("lstm", "sigmoid"))]
  text = ("--config.num_steps=1500", "--config.seq_len=64", "--config.eval_every=500")
  extrapolation = [Run("extrapolation", name, f"configs/default.py:{preset}", text,
                       ("--extrapolate=1,2,4,8,16",))
                   for name, preset in (("xlstm", "xlstm_tiny"), ("llama", "llama_tiny"))]
  return {"revision": revision, "mqar": mqar, "extrapolation": extrapolation,
          "formal": formal}


def run_one(run: Run, runs_dir: pathlib.Path) -> str:
  """Trains (or resumes) and evaluates `run` unless its eval.json exists; a status line."""
  workdir = runs_dir / run.table / run.name
  if (workdir / "eval.json").is_file():
    return f"{run.table}/{run.name}: done before"
  start = time.time()
  error = train_and_eval(workdir, run.config, list(run.overrides), list(run.eval_args))
  if error:
    return f"{run.table}/{run.name}: FAILED, {error}"
  return f"{run.table}/{run.name}: done in {(time.time() - start) / 60:.1f} min"


def run_all(runs: list[Run], runs_dir: pathlib.Path, jobs: int) -> list[str]:
  """Runs `runs`, `jobs` at a time, printing a line as each ends; the failed runs' names."""
  failed = []
  with concurrent.futures.ThreadPoolExecutor(max(jobs, 1)) as pool:
    futures = {pool.submit(run_one, r, runs_dir): r for r in runs}
    for i, fut in enumerate(concurrent.futures.as_completed(futures), start=1):
      print(f"[{i}/{len(runs)}] {fut.result()}", flush=True)
      run = futures[fut]
      if load(runs_dir, run) is None:   # no eval.json: it failed
        failed.append(f"{run.table}/{run.name}")
  return failed


def load(runs_dir: pathlib.Path, run: Run) -> dict | None:
  """{"eval", "config"} of a finished run, or None."""
  workdir = runs_dir / run.table / run.name
  if not (workdir / "eval.json").is_file():
    return None
  return {"eval": json.loads((workdir / "eval.json").read_text()),
          "config": json.loads((workdir / "config.json").read_text())}


def main(argv=None) -> None:
  from xlstm_jax.evaluation.paper_report import write_report  # noqa: PLC0415 (it imports us)

  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", default="runs/paper", help="directory of the runs")
  parser.add_argument("--out", default="docs/results", help="report and plot directory")
  parser.add_argument("--tables", default=",".join(experiments()),
                      help="comma-separated tables to run: " + ", ".join(experiments()))
  parser.add_argument("--jobs", type=int, default=1, help="runs at the same time")
  parser.add_argument("--report_only", action="store_true", help="write the report only")
  args = parser.parse_args(argv)
  tables = experiments()
  chosen = args.tables.split(",")
  unknown = sorted(set(chosen) - set(tables))
  if unknown:
    parser.error(f"unknown tables {unknown}; known: {sorted(tables)}")
  runs_dir = pathlib.Path(args.runs).resolve()
  failed = []
  if not args.report_only:
    failed = run_all([r for t in chosen for r in tables[t]], runs_dir, args.jobs)
  print(f"wrote {write_report(runs_dir, pathlib.Path(args.out), tables)}")
  if failed:   # the report marks their findings "not run yet"
    sys.exit(f"{len(failed)} runs failed (see their run.log): {', '.join(failed)}")


if __name__ == "__main__":
  main()
