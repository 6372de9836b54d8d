"""An unfinished paper run goes on on another machine: --save_progress copies its newest
finished checkpoint to the archive, and a runs directory without it resumes from there."""

import json
import os
import shutil
import subprocess
import time

import pytest

from xlstm_jax.evaluation import paper
from xlstm_jax.evaluation.paper_runs import (CHECKPOINT_MANIFEST, PROGRESS, Run,
                                              archive_progress, newest_checkpoint,
                                              progress_of, restore_progress)
from xlstm_jax.evaluation.paper_report import write_report
from xlstm_jax.experiments import runner
from xlstm_jax.training import integrity

RUN = Run("revision", "mlstm_exp", "configs/revision.py:model=mlstm,igate=exp",
          ("--config.num_steps=4", "--config.batch_size=8", "--config.log_every=1",
           "--config.optimizer.warmup_steps=1", "--config.eval_every=0",
           "--config.data.test_lengths=(2,3)", "--config.data.test_examples=4"))


def _metrics_steps(workdir):
  return [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_the_manifest_name_is_the_checkpointers():
  assert CHECKPOINT_MANIFEST == integrity.MANIFEST


def test_a_paused_run_resumes_on_a_new_machine_from_the_archive(tmp_path, capsys):
  runs, archive = tmp_path / "runs", tmp_path / "archive"
  workdir = runs / RUN.table / RUN.name
  workdir.mkdir(parents=True)
  # the first machine trains 2 of the 4 steps (as if the session ended there)
  cmd = runner.entry_point_command("xlstm_jax.train", f"--config={RUN.config}",
                                   f"--workdir={workdir}", *RUN.overrides,
                                   "--config.stop_at_step=2")
  subprocess.run(cmd, check=True, capture_output=True)
  (workdir / paper.ATTEMPT).write_text(json.dumps({"start": 0.0, "jobs": 2}))  # in flight
  paper.main([f"--runs={runs}", f"--archive={archive}", "--tables=revision",
              f"--only=revision/{RUN.name}", "--save_progress"])
  assert f"revision/{RUN.name}: step 2 saved to the archive" in capsys.readouterr().out
  progress = archive / RUN.table / RUN.name / PROGRESS
  assert newest_checkpoint(progress).name == "2"
  wall = [json.loads(line) for line in (progress / "wall.jsonl").read_text().split("\n") if line]
  assert len(wall) == 1 and wall[0]["in_flight"] and wall[0]["jobs"] == 2
  assert wall[0]["seconds"] > 1e9   # counted from the attempt's start (here the epoch)

  shutil.rmtree(runs)   # the machine is gone; the next one resumes at step 2
  assert paper.run_one(RUN, runs, archive=archive).startswith(f"revision/{RUN.name}: done in")
  assert "resuming from step 2 of the archive" in capsys.readouterr().out
  assert "resumed from step 2" in (workdir / "run.log").read_text()
  assert json.loads((workdir / "eval.json").read_text())["step"] == 4
  assert _metrics_steps(workdir) == [1, 2, 3, 4]   # the first machine's log carried over
  assert not (workdir / paper.ATTEMPT).exists()
  wall = [json.loads(line) for line in (workdir / "wall.jsonl").read_text().split("\n") if line]
  assert [bool(w.get("in_flight")) for w in wall] == [True, False]   # both attempts counted
  assert not progress.exists()   # the finished run's results replaced it
  assert (archive / RUN.table / RUN.name / "eval.json").is_file()
  assert paper.save_progress(RUN, runs, archive) == f"revision/{RUN.name}: finished, nothing to save"


def _fake_checkpoint(workdir, step, finished=True):
  path = workdir / "checkpoints" / str(step)
  path.mkdir(parents=True)
  (path / "state").write_text(f"state of step {step}")
  if finished:
    (path / CHECKPOINT_MANIFEST).write_text("{}")


def test_only_finished_checkpoints_travel_and_a_newer_local_one_wins(tmp_path):
  runs, archive = tmp_path / "runs", tmp_path / "archive"
  workdir = runs / RUN.table / RUN.name
  assert archive_progress(runs, RUN, archive) is None          # nothing trained yet
  _fake_checkpoint(workdir, 100)
  _fake_checkpoint(workdir, 200, finished=False)                # its save still in flight
  assert archive_progress(runs, RUN, archive) == 100
  _fake_checkpoint(workdir, 300)
  assert archive_progress(runs, RUN, archive) == 300            # replaces the older one
  progress = archive / RUN.table / RUN.name / PROGRESS
  assert [p.name for p in (progress / "checkpoints").iterdir()] == ["300"]
  assert restore_progress(runs, RUN, archive) is None           # the local one is as new
  shutil.rmtree(workdir / "checkpoints" / "300")
  assert restore_progress(runs, RUN, archive) == 300            # newer than the local 100
  assert (workdir / "checkpoints" / "300" / "state").read_text() == "state of step 300"
  assert paper.save_progress(Run("revision", "other", RUN.config), runs, archive) == (
      "revision/other: no finished checkpoint to save")


def test_the_report_says_where_an_unfinished_run_stands(tmp_path):
  runs, archive = tmp_path / "runs", tmp_path / "archive"
  workdir = runs / RUN.table / RUN.name
  _fake_checkpoint(workdir, 400)
  (workdir / "config.json").write_text(json.dumps({"num_steps": 20000}))
  (workdir / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in (
      {"step": 200, "eval_accuracy": 0.5}, {"step": 400, "loss": 0.6},
      {"step": 400, "eval_accuracy": 0.75}, {"step": 500, "eval_accuracy": 0.8})) + "\n")
  assert progress_of(runs, RUN, archive) == {"step": 400, "num_steps": 20000,
                                             "eval_accuracy": 0.75}   # not step 500's
  archive_progress(runs, RUN, archive)
  shutil.rmtree(runs)
  assert progress_of(runs, RUN, archive)["step"] == 400   # from the archive
  assert progress_of(runs, Run("revision", "other", RUN.config), archive) is None
  report = write_report(runs, tmp_path / "out", {"revision": [RUN]}, archive).read_text()
  assert ("Runs not finished yet: `revision/mlstm_exp` (at step 400 of 20,000, validation "
          "accuracy 0.750).") in report


def test_progress_reaches_the_archive_while_a_run_trains(tmp_path, monkeypatch, capsys):
  runs, archive = tmp_path / "runs", tmp_path / "archive"

  def training_that_dies(workdir, config, overrides, eval_args):
    _fake_checkpoint(workdir, 100)
    (workdir / "config.json").write_text(json.dumps({"num_steps": 1000}))
    deadline = time.time() + 30
    while not (archive / RUN.table / RUN.name / PROGRESS).is_dir() and time.time() < deadline:
      time.sleep(0.01)   # the saver's turn
    return "xlstm_jax.train failed (the machine went away)"

  monkeypatch.setattr(paper.runner, "train_and_eval", training_that_dies)
  status = paper.run_one(RUN, runs, archive=archive, progress_every_s=0.05)
  assert "FAILED" in status
  assert f"revision/{RUN.name}: step 100 saved to the archive" in capsys.readouterr().out
  assert progress_of(tmp_path / "gone", RUN, archive)["step"] == 100
  with paper.saving_progress(RUN, runs, None, 0.05):   # no archive: no thread, no error
    pass


@pytest.mark.parametrize("sharing", [{"runs_at_once": 2}, {"jobs": 2}])   # now, and before
def test_an_attempt_killed_before_recording_its_time_is_counted_on_the_next(tmp_path,
                                                                            monkeypatch,
                                                                            sharing):
  runs = tmp_path / "runs"
  workdir = runs / RUN.table / RUN.name
  workdir.mkdir(parents=True)
  now = time.time()
  # the killed attempt: started 100 s ago, last wrote its log 40 s ago, then SIGKILL
  (workdir / paper.ATTEMPT).write_text(json.dumps({"start": now - 100, **sharing}))
  (workdir / "run.log").write_text("step 1/4\n")
  os.utime(workdir / "run.log", (now - 40, now - 40))
  monkeypatch.setattr(paper.runner, "train_and_eval", lambda *args: None)
  assert "done in" in paper.run_one(RUN, runs)
  wall = [json.loads(line) for line in (workdir / "wall.jsonl").read_text().splitlines()]
  assert len(wall) == 2 and wall[0]["interrupted"] and "interrupted" not in wall[1]
  assert wall[0]["seconds"] == pytest.approx(60, abs=1) and wall[0] | sharing == wall[0]
  assert wall[1]["runs_at_once"] == 1   # the new attempt ran alone
  assert not (workdir / paper.ATTEMPT).exists()


def test_a_killed_attempt_the_archive_counted_is_not_counted_twice(tmp_path, monkeypatch):
  runs, archive = tmp_path / "runs", tmp_path / "archive"
  workdir = runs / RUN.table / RUN.name
  _fake_checkpoint(workdir, 100)
  (workdir / "config.json").write_text("{}")
  archive_progress(runs, RUN, archive, {"seconds": 50.0, "in_flight": True})
  shutil.rmtree(runs)   # a new machine, where the killed attempt's file still lies
  workdir.mkdir(parents=True)
  (workdir / paper.ATTEMPT).write_text(json.dumps({"start": time.time() - 50, "jobs": 1}))
  monkeypatch.setattr(paper.runner, "train_and_eval", lambda *args: None)
  monkeypatch.setattr(paper, "archive_run", lambda *args: None)
  paper.run_one(RUN, runs, archive=archive)
  wall = [json.loads(line) for line in (workdir / "wall.jsonl").read_text().splitlines()]
  assert [w.get("in_flight") or w.get("interrupted") or False for w in wall] == [True, False]
