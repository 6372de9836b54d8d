"""The runs of the xLSTM paper's qualitative experiments at CPU size (no jax, no running):
each table's runs with their configs and flags (`experiments`), the model labels, where a
finished run's results are (`result_dir`), the results (`load`), their committed archive
(`archive_run`), and an unfinished run's progress carried to another machine
(`archive_progress`, `restore_progress`). evaluation/paper.py runs them, paper_report.py
reports.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import tempfile

FORMAL_FAMILIES = ("slstm", "xlstm11", "mlstm", "llama", "lstm")
MQAR_GRID_FAMILIES = ("xlstm11", "mlstm", "llama", "lstm")
# The paper's Figure 5 at CPU size: per context length, 1/16, 1/8 and 1/4 of it in
# key-value pairs (the 4..32 pairs bound the largest context's share)
MQAR_GRID = ((64, 4), (64, 8), (64, 16), (128, 8), (128, 16), (128, 32), (256, 16), (256, 32))
LABELS = {"slstm": "xLSTM[0:1]", "xlstm11": "xLSTM[1:1]", "mlstm": "xLSTM[1:0]",
          "llama": "Llama", "lstm": "LSTM", "xlstm": "xLSTM[3:1]",
          "llama_noconv": "Llama without the short conv"}


@dataclasses.dataclass(frozen=True)
class Run:
  table: str
  name: str
  config: str                       # configs/<file>[:options], relative to the repo root
  overrides: tuple[str, ...] = ()   # extra train.py flags
  eval_args: tuple[str, ...] = ()   # extra eval.py flags


def experiments() -> dict[str, list[Run]]:
  """Every run of every table, with its CPU-sized settings."""
  # NX-AI's official setup (20,000 steps of batch 256), stopped once 5 validations in a
  # row are perfect in distribution (the test lengths 40..256 are then eval.py's)
  early = ("--config.early_stop_accuracy=1.0", "--config.early_stop_evals=5")
  formal = [Run("formal", f"{task}_{m}", f"configs/formal.py:task={task},model={m}", early)
            for task in ("parity", "modular_arithmetic") for m in FORMAL_FAMILIES]
  mqar = [Run("mqar", m, f"configs/mqar.py:model={m},context=64,pairs=8",
              ("--config.num_steps=3000",)) for m in ("xlstm11", "lstm", "mlstm", "llama")]
  mqar.append(Run("mqar", "llama_noconv", "configs/mqar.py:model=llama,context=64,pairs=8,conv=0",
                  ("--config.num_steps=3000",)))   # the plain RoPE Transformer, for contrast
  mqar_grid = [Run("mqar_grid", f"{m}_c{context}_p{pairs}",
                   f"configs/mqar.py:model={m},context={context},pairs={pairs}",
                   ("--config.num_steps=3000",))
               for context, pairs in MQAR_GRID for m in MQAR_GRID_FAMILIES]   # cheap cells first
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
          "formal": formal, "mqar_grid": mqar_grid}


# What a finished run leaves that the report reads, and its training curve (the logged
# loss and validation of every step, for a reader asking whether a run had converged):
# small, kept in the archive (the checkpoints and logs stay in the runs directory)
RESULT_FILES = ("eval.json", "config.json", "wall.jsonl", "metrics.jsonl")


def result_dir(runs_dir: pathlib.Path, run: Run,
               archive: pathlib.Path | None = None) -> pathlib.Path | None:
  """Where `run`'s results are: RUNS_DIR/<table>/<name> if it has its eval.json, else the
  same place in `archive` (`archive_run`) if that has it, else None (not finished)."""
  for base in (runs_dir, archive):
    if base is not None and (base / run.table / run.name / "eval.json").is_file():
      return base / run.table / run.name
  return None


def load(runs_dir: pathlib.Path, run: Run,
         archive: pathlib.Path | None = None) -> dict | None:
  """{"eval", "config", "wall", "metrics"} of a finished run (wall and metrics: the lines
  of its wall.jsonl and metrics.jsonl, [] where none were kept), read from `result_dir`;
  None if it has not finished."""
  workdir = result_dir(runs_dir, run, archive)
  if workdir is None:
    return None

  def lines(name):
    path = workdir / name
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.strip()] if path.is_file() else []
  return {"eval": json.loads((workdir / "eval.json").read_text()),
          "config": json.loads((workdir / "config.json").read_text()),
          "wall": lines("wall.jsonl"), "metrics": lines("metrics.jsonl")}


def _copy_present(source: pathlib.Path, target: pathlib.Path, names) -> None:
  """Copies each of `names` that SOURCE has into TARGET."""
  for name in names:
    if (source / name).is_file():
      shutil.copyfile(source / name, target / name)


def archive_run(runs_dir: pathlib.Path, run: Run, archive: pathlib.Path) -> None:
  """Copies a finished run's RESULT_FILES to ARCHIVE/<table>/<name>, so that its results
  outlive the runs directory (the archive is committed; a machine's runs may not last)."""
  source, target = runs_dir / run.table / run.name, archive / run.table / run.name
  if not (source / "eval.json").is_file():
    raise FileNotFoundError(f"{source} has no eval.json: run {run.table}/{run.name} first")
  target.mkdir(parents=True, exist_ok=True)
  _copy_present(source, target, RESULT_FILES)
  shutil.rmtree(target / PROGRESS, ignore_errors=True)   # the results supersede it


# An unfinished run's progress, kept in ARCHIVE/<table>/<name>/progress: its newest finished
# checkpoint (~1 MB for the formal models: parameters, optimizer state, data position) and
# the files training resumes with, so that a long run goes on across machines
PROGRESS = "progress"
PROGRESS_FILES = ("config.json", "metrics.jsonl", "wall.jsonl")
CHECKPOINT_MANIFEST = "integrity.json"   # training.integrity.MANIFEST (importing it loads jax)


def newest_checkpoint(workdir: pathlib.Path) -> pathlib.Path | None:
  """WORKDIR/checkpoints/<step> of the highest step whose save finished (the checksum
  manifest is written once orbax completed it), or None."""
  checkpoints = workdir / "checkpoints"
  steps = [p for p in checkpoints.iterdir()
           if p.name.isdigit() and (p / CHECKPOINT_MANIFEST).is_file()
           ] if checkpoints.is_dir() else []
  return max(steps, key=lambda p: int(p.name), default=None)


def archive_progress(runs_dir: pathlib.Path, run: Run, archive: pathlib.Path,
                     in_flight: dict | None = None) -> int | None:
  """Copies an unfinished run's newest finished checkpoint and PROGRESS_FILES to
  ARCHIVE/<table>/<name>/progress, replacing what was there; the checkpoint's step, or None
  if the run has none. `in_flight`: a wall.jsonl line for an attempt still running (the
  time spent so far), appended to the archived copy only. Safe while the run trains: a
  checkpoint that the run deletes during the copy is skipped for the next newest."""
  source = runs_dir / run.table / run.name
  target = archive / run.table / run.name / PROGRESS
  target.parent.mkdir(parents=True, exist_ok=True)
  partial = pathlib.Path(tempfile.mkdtemp(prefix=PROGRESS + ".", dir=target.parent))
  for _ in range(3):
    checkpoint = newest_checkpoint(source)
    if checkpoint is None:
      shutil.rmtree(partial)
      return None
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    try:
      shutil.copytree(checkpoint, partial / "checkpoints" / checkpoint.name)
      break
    except (FileNotFoundError, shutil.Error):   # rotated away by the run meanwhile
      continue
  else:
    shutil.rmtree(partial)
    raise RuntimeError(f"{source}'s checkpoints kept changing while being copied; try again")
  _copy_present(source, partial, PROGRESS_FILES)
  if in_flight is not None:
    with open(partial / "wall.jsonl", "a") as f:
      f.write(json.dumps(in_flight) + "\n")
  shutil.rmtree(target, ignore_errors=True)
  try:
    partial.rename(target)
  except OSError:   # a concurrent save put its (equally good) copy there first
    shutil.rmtree(partial)
  return int(checkpoint.name)


def progress_of(runs_dir: pathlib.Path, run: Run,
                archive: pathlib.Path | None = None) -> dict | None:
  """Where an unfinished run stands: {"step": its newest finished checkpoint, "num_steps",
  "eval_accuracy": the last validation accuracy logged (None if none)} from the runs
  directory or, if further there, `archive`'s progress; None without a checkpoint."""
  best = None
  for workdir in (runs_dir / run.table / run.name,
                  None if archive is None else archive / run.table / run.name / PROGRESS):
    checkpoint = None if workdir is None else newest_checkpoint(workdir)
    if checkpoint is not None and (best is None or int(checkpoint.name) > best[0]):
      best = (int(checkpoint.name), workdir)
  if best is None:
    return None
  step, workdir = best
  config = json.loads((workdir / "config.json").read_text())
  metrics = workdir / "metrics.jsonl"
  accuracy = None
  for line in metrics.read_text().splitlines() if metrics.is_file() else ():
    entry = json.loads(line)
    if "eval_accuracy" in entry and entry["step"] <= step:
      accuracy = entry["eval_accuracy"]
  return {"step": step, "num_steps": config["num_steps"], "eval_accuracy": accuracy}


def restore_progress(runs_dir: pathlib.Path, run: Run, archive: pathlib.Path) -> int | None:
  """Puts an archived progress (`archive_progress`) into RUNS_DIR/<table>/<name> when that has
  no newer checkpoint of its own, so training resumes from it; the step restored, or None."""
  source = archive / run.table / run.name / PROGRESS
  workdir = runs_dir / run.table / run.name
  checkpoint, own = newest_checkpoint(source), newest_checkpoint(workdir)
  if checkpoint is None or (own is not None and int(own.name) >= int(checkpoint.name)):
    return None
  destination = workdir / "checkpoints" / checkpoint.name
  shutil.rmtree(destination, ignore_errors=True)   # a save of that step that never finished
  shutil.copytree(checkpoint, destination)
  _copy_present(source, workdir, PROGRESS_FILES)
  return int(checkpoint.name)
