"""The experiment runner (xlstm_jax.experiments.runner): installed entry points, local jobs
and the Slurm array script. A full train + eval through it runs in test_sweep.py and
test_paper_report.py."""

import sys
import threading

import pytest

from xlstm_jax.experiments import runner


def test_entry_point_commands_use_this_interpreter_and_the_modules():
  assert runner.entry_point_command("xlstm_jax.train", "--workdir=w") == [
      sys.executable, "-m", "xlstm_jax.train", "--workdir=w"]


def test_run_jobs_runs_every_item_at_most_jobs_at_a_time():
  running, peak, lock = [0], [0], threading.Lock()
  gate = threading.Barrier(2, timeout=10)

  def run(i):
    with lock:
      running[0] += 1
      peak[0] = max(peak[0], running[0])
    if i < 2:
      gate.wait()   # the first two must overlap, or this times out
    with lock:
      running[0] -= 1
    return f"run {i}"

  ended = dict(runner.run_jobs(range(5), run, jobs=2))
  assert ended == {i: f"run {i}" for i in range(5)} and peak[0] == 2
  assert list(runner.run_jobs([3, 1, 2], str, jobs=1)) == [(3, "3"), (1, "1"), (2, "2")]
  with pytest.raises(ValueError, match="jobs=0 must be >= 1"):
    list(runner.run_jobs([1], str, jobs=0))


def test_slurm_array_script(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  script = runner.slurm_array_script("sweep-x", 3, tmp_path / "logs", "echo $SLURM_ARRAY_TASK_ID")
  assert script.splitlines() == [
      "#!/bin/bash", "#SBATCH --job-name=sweep-x", "#SBATCH --array=0-2",
      f"#SBATCH --output={tmp_path / 'logs'}/slurm-%A_%a.out",
      "# add your partition, GPUs and time limit here", f"cd {tmp_path.resolve()}",
      "echo $SLURM_ARRAY_TASK_ID"]
  with pytest.raises(ValueError, match="num_tasks=0 must be >= 1"):
    runner.slurm_array_script("x", 0, tmp_path, "true")
