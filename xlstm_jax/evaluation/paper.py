"""The xLSTM paper's qualitative experiments at CPU size: run them, then write the report.

  python -m xlstm_jax.evaluation.paper --runs=runs/paper --jobs=2          # all tables
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --tables=revision
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --report_only     # tables + plots
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --only='formal/parity_*' --jobs=2
  python -m xlstm_jax.evaluation.paper --runs=runs/paper --save_progress   # before a stop

Each run is `python -m xlstm_jax.train` in RUNS/<table>/<name> followed by
`python -m xlstm_jax.eval` (xlstm_jax.experiments.runner, from the current directory: the
configs/ paths of evaluation/paper_runs.py are relative to it); a run with an
eval.json is done and skipped, an interrupted one resumes from its checkpoint, so the
command can be repeated until everything is in. A finished run's eval.json, config.json
and wall.jsonl are also copied to the archive (--archive, docs/results/paper_runs: commit
it), which counts as done too, so results outlive a machine whose runs directory is gone.
A run that cannot finish on one machine goes on on the next: --save_progress copies each
unfinished run's newest checkpoint to ARCHIVE/<table>/<name>/progress (commit it, ~1 MB),
and a run whose runs directory has no newer checkpoint resumes from there; while a run
trains, the runner does the same every --progress_every minutes, so a commit is all a
machine's last minutes need.
The report, docs/results/paper_reproduction.md by default, is written from those files
alone: every number in it comes from a run, and each finding is checked against the
threshold the issue states, reproduced or not.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fnmatch
import json
import os
import pathlib
import platform
import sys
import threading
import time

from xlstm_jax.evaluation.paper_report import write_report
from xlstm_jax.evaluation.paper_runs import (Run, archive_progress, archive_run, experiments,
                                              restore_progress, result_dir)
from xlstm_jax.experiments import runner


ATTEMPT = "attempt.json"   # in a workdir while an attempt runs: its start, pid, runs_at_once


def wall_entry(seconds: float, ended: float | None = None) -> dict:
  """One attempt's wall.jsonl line: its wall time, date (of `ended`, a time.time(); default
  today) and machine."""
  day = datetime.date.today() if ended is None else datetime.date.fromtimestamp(ended)
  return {"seconds": round(seconds, 1), "date": day.isoformat(),
          "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}


def record_wall_time(workdir: pathlib.Path, seconds: float, ended: float | None = None,
                     **marks) -> None:
  """Appends one attempt's `wall_entry` (with `marks`, e.g. interrupted=True, and its
  `sharing` count) to WORKDIR/wall.jsonl (a resumed run has one line per attempt; the report
  sums them)."""
  with open(workdir / "wall.jsonl", "a") as f:
    f.write(json.dumps({**wall_entry(seconds, ended), **marks}) + "\n")


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:   # alive, another user's
    return True
  return True


def runs_in_flight(runs_dir: pathlib.Path) -> int:
  """Paper runs training now under `runs_dir` on this machine, whichever runner started them:
  the ATTEMPT files whose process is alive (a killed attempt's file, or one written before
  attempts kept their pid, does not count)."""
  count = 0
  for attempt_file in runs_dir.glob(f"*/*/{ATTEMPT}"):
    try:
      pid = json.loads(attempt_file.read_text()).get("pid")
    except (OSError, ValueError):   # gone, or being rewritten this instant
      continue
    count += pid is not None and _alive(pid)
  return count


def note_runs_at_once(runs_dir: pathlib.Path, workdir: pathlib.Path) -> dict:
  """Raises the running attempt's `runs_at_once` (in WORKDIR/ATTEMPT) to `runs_in_flight` now
  (sampled at its start, at each progress save and at its end: the most runs seen sharing
  the machine); the attempt."""
  attempt = json.loads((workdir / ATTEMPT).read_text())
  attempt["runs_at_once"] = max(attempt["runs_at_once"], runs_in_flight(runs_dir))
  _write_attempt(workdir, attempt)
  return attempt


def _write_attempt(workdir: pathlib.Path, attempt: dict) -> None:
  """Writes WORKDIR/ATTEMPT whole (temporary file, then rename), for the other runs that
  read it (`runs_in_flight`)."""
  partial = workdir / f"{ATTEMPT}.tmp"
  partial.write_text(json.dumps(attempt))
  partial.replace(workdir / ATTEMPT)


def sharing(attempt: dict) -> dict:
  """The wall.jsonl field saying how many runs shared the machine: `runs_at_once`, or for an
  attempt started before that was measured, `jobs` (the runs of its own runner only)."""
  if "runs_at_once" in attempt:
    return {"runs_at_once": attempt["runs_at_once"]}
  return {"jobs": attempt.get("jobs", 1)}


def record_killed_attempt(workdir: pathlib.Path) -> None:
  """An attempt whose process was killed (its session or machine ended) left its ATTEMPT
  file and no wall.jsonl line: appends that line, marked "interrupted", counting from the
  attempt's start to the workdir's last write (run.log and metrics.jsonl are written every
  step), and removes the file. Nothing to do without an ATTEMPT file."""
  attempt_file = workdir / ATTEMPT
  if not attempt_file.is_file():
    return
  attempt = json.loads(attempt_file.read_text())
  ended = max((p.stat().st_mtime for p in (workdir / "run.log", workdir / "metrics.jsonl")
               if p.is_file()), default=attempt["start"])
  record_wall_time(workdir, ended - attempt["start"], ended, interrupted=True, **sharing(attempt))
  attempt_file.unlink()


def save_progress(run: Run, runs_dir: pathlib.Path, archive: pathlib.Path) -> str:
  """`archive_progress` of an unfinished run, counting an attempt still running (its
  ATTEMPT file) up to now; a status line."""
  if result_dir(runs_dir, run, archive) is not None:
    return f"{run.table}/{run.name}: finished, nothing to save"
  attempt_file = runs_dir / run.table / run.name / ATTEMPT
  in_flight = None
  if attempt_file.is_file():
    attempt = json.loads(attempt_file.read_text())
    in_flight = {**wall_entry(time.time() - attempt["start"]), **sharing(attempt),
                 "in_flight": True}
  step = archive_progress(runs_dir, run, archive, in_flight)
  if step is None:
    return f"{run.table}/{run.name}: no finished checkpoint to save"
  return f"{run.table}/{run.name}: step {step} saved to the archive"


@contextlib.contextmanager
def saving_progress(run: Run, runs_dir: pathlib.Path, archive: pathlib.Path | None,
                    every_s: float):
  """While open, `save_progress` of `run` every `every_s` seconds (a background thread; off
  without an archive or with every_s <= 0), so that progress reaches the archive even if
  nobody calls --save_progress before the machine goes. A failed save is reported, not
  raised: the next one tries again."""
  stop = threading.Event()

  def save_until_stopped():
    while not stop.wait(every_s):
      try:
        note_runs_at_once(runs_dir, runs_dir / run.table / run.name)
        print(save_progress(run, runs_dir, archive), flush=True)
      except Exception as err:  # noqa: BLE001 - keep training; the next save tries again
        print(f"{run.table}/{run.name}: saving progress failed ({err})", flush=True)

  thread = threading.Thread(target=save_until_stopped, daemon=True)
  if archive is not None and every_s > 0:
    thread.start()
  try:
    yield
  finally:
    stop.set()
    if thread.is_alive():
      thread.join()


def run_one(run: Run, runs_dir: pathlib.Path, archive: pathlib.Path | None = None,
            progress_every_s: float = 0.0) -> str:
  """Trains (or resumes) and evaluates `run` unless the runs directory or `archive` has its
  eval.json, recording the attempt's wall time and the most runs that shared the machine
  (`record_wall_time`, `note_runs_at_once`; an earlier attempt that was killed first,
  `record_killed_attempt`) and archiving a finished run (`archive_run`); a
  status line. A run with progress in `archive` and no newer
  checkpoint of its own resumes from it (`restore_progress`); while it trains, its progress
  is saved there every `progress_every_s` seconds (`saving_progress`)."""
  workdir = runs_dir / run.table / run.name
  done_in = result_dir(runs_dir, run, archive)
  if done_in is not None:
    if archive is not None and done_in == workdir:
      archive_run(runs_dir, run, archive)   # it may have finished before the archive existed
    return f"{run.table}/{run.name}: done before"
  resumed = restore_progress(runs_dir, run, archive) if archive is not None else None
  if resumed is not None:
    print(f"{run.table}/{run.name}: resuming from step {resumed} of the archive", flush=True)
    (workdir / ATTEMPT).unlink(missing_ok=True)   # the archived wall.jsonl counts it (in flight)
  else:
    record_killed_attempt(workdir)
  start = time.time()
  workdir.mkdir(parents=True, exist_ok=True)
  _write_attempt(workdir, {"start": start, "pid": os.getpid(),   # itself and those running
                           "runs_at_once": 1 + runs_in_flight(runs_dir)})
  try:
    with saving_progress(run, runs_dir, archive, progress_every_s):
      error = runner.train_and_eval(workdir, run.config, list(run.overrides),
                                    list(run.eval_args))
  finally:   # an interrupted attempt's time was spent too
    seconds = time.time() - start
    record_wall_time(workdir, seconds, **sharing(note_runs_at_once(runs_dir, workdir)))
    (workdir / ATTEMPT).unlink(missing_ok=True)
  if error:
    return f"{run.table}/{run.name}: FAILED, {error}"
  if archive is not None:
    archive_run(runs_dir, run, archive)
  return f"{run.table}/{run.name}: done in {seconds / 60:.1f} min"


def run_all(runs: list[Run], runs_dir: pathlib.Path, jobs: int,
            archive: pathlib.Path | None = None, progress_every_s: float = 0.0) -> list[str]:
  """Runs `runs`, `jobs` at a time, printing a line as each ends; the failed runs' names."""
  failed = []
  ended = runner.run_jobs(
      runs, lambda r: run_one(r, runs_dir, archive, progress_every_s=progress_every_s),
      max(jobs, 1))
  for i, (run, status) in enumerate(ended, start=1):
    print(f"[{i}/{len(runs)}] {status}", flush=True)
    if result_dir(runs_dir, run, archive) is None:   # no eval.json: it failed
      failed.append(f"{run.table}/{run.name}")
  return failed


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", default="runs/paper", help="directory of the runs")
  parser.add_argument("--out", default="docs/results", help="report and plot directory")
  parser.add_argument("--tables", default=",".join(experiments()),
                      help="comma-separated tables to run: " + ", ".join(experiments()))
  parser.add_argument("--only", default="",
                      help="comma-separated TABLE/NAME patterns (fnmatch, e.g. "
                           "'formal/parity_*'): run just these of the chosen tables, in this "
                           "order (the report still covers the whole tables)")
  parser.add_argument("--archive", default="docs/results/paper_runs",
                      help="where finished runs' result files are copied and also looked up "
                           "('' for none)")
  parser.add_argument("--jobs", type=int, default=1, help="runs at the same time")
  parser.add_argument("--progress_every", type=float, default=15.0,
                      help="minutes between automatic --save_progress of each run while it "
                           "trains (0: only when asked)")
  parser.add_argument("--report_only", action="store_true", help="write the report only")
  parser.add_argument("--save_progress", action="store_true",
                      help="copy each chosen unfinished run's newest checkpoint to the archive "
                           "(safe while it trains; commit it before the machine goes), then "
                           "exit; a later run resumes from it")
  args = parser.parse_args(argv)
  tables = experiments()
  chosen = args.tables.split(",")
  unknown = sorted(set(chosen) - set(tables))
  if unknown:
    parser.error(f"unknown tables {unknown}; known: {sorted(tables)}")
  runs_dir = pathlib.Path(args.runs).resolve()
  archive = pathlib.Path(args.archive).resolve() if args.archive else None
  runs = [r for t in chosen for r in tables[t]]
  if args.only:
    patterns = args.only.split(",")
    runs = [r for p in patterns for r in runs if fnmatch.fnmatch(f"{r.table}/{r.name}", p)]
    runs = list(dict.fromkeys(runs))   # a run matched by two patterns runs once
    if not runs:
      parser.error(f"--only={args.only!r} matches no run of the tables {chosen}")
  if args.save_progress:
    if archive is None:
      parser.error("--save_progress needs an --archive")
    for run in runs:
      print(save_progress(run, runs_dir, archive), flush=True)
    return
  failed = []
  if not args.report_only:
    failed = run_all(runs, runs_dir, args.jobs, archive, args.progress_every * 60)
  print(f"wrote {write_report(runs_dir, pathlib.Path(args.out), tables, archive)}")
  if failed:   # the report marks their findings "not run yet"
    sys.exit(f"{len(failed)} runs failed (see their run.log): {', '.join(failed)}")


if __name__ == "__main__":
  main()
