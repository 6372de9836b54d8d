"""Multi-process runs: launch settings from flags/environment/Slurm, and a 2-process
localhost run through jax.distributed (CPU collectives) equal to a 1-process run."""

import json
import socket
import subprocess

import pytest

from test_train_entry import env, metrics, train, train_cmd
from xlstm_jax.training.distributed import launch_settings


def test_single_process_launches_initialise_nothing():
  assert launch_settings(environ={}) is None
  assert launch_settings(num_processes=1, environ={}) is None
  assert launch_settings(environ={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) is None


def test_flags_win_over_the_environment():
  environ = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
  assert launch_settings(environ=environ) == {"coordinator_address": "h:1", "num_processes": 4,
                                              "process_id": 3}
  assert launch_settings("c:2", 2, 1, environ=environ) == {
      "coordinator_address": "c:2", "num_processes": 2, "process_id": 1}


def test_slurm_is_left_to_jax_detection():
  slurm = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}
  assert launch_settings(environ=slurm) == {}
  assert launch_settings("c:2", environ=slurm) == {"coordinator_address": "c:2"}


def test_partial_or_bad_launches_are_named():
  with pytest.raises(ValueError, match=r"missing \['num_processes', 'process_id'\]"):
    launch_settings("c:2", environ={})
  with pytest.raises(ValueError, match=r"process_id=2 is not in \[0, num_processes=2\)"):
    launch_settings("c:2", 2, 2, environ={})
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two' is not an integer"):
    launch_settings(environ={"JAX_NUM_PROCESSES": "two"})


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_give_the_one_process_losses(tmp_path):
  steps = ["--config.num_steps=4", "--config.checkpoint_every=2", "--config.eval_every=4"]
  train(tmp_path / "one", *steps)
  port = _free_port()
  procs = [subprocess.Popen(
      train_cmd(tmp_path / "two", *steps, f"--coordinator_address=localhost:{port}",
                "--num_processes=2", f"--process_id={i}"),
      env=env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  assert "step 4/4" in outputs[0][1] and "step 4/" not in outputs[1][1]  # process 0 reports
  one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
  assert sorted(one) == sorted(two) == [1, 2, 3, 4]
  for step in one:
    assert two[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5), step
  evals = {run: [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text()
                  .splitlines() if "eval_loss" in line] for run in ("one", "two")}
  assert len(evals["two"]) == 1  # one writer
  assert evals["two"][0]["eval_loss"] == pytest.approx(evals["one"][0]["eval_loss"], rel=1e-5)
  assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["2", "4"]
