"""One writer per workdir: a second run is refused at once naming the holder; a SIGKILLed
holder does not block the next run; the first run is unaffected by the refused one."""

import signal
import subprocess
import sys
import time

import pytest

from test_train_entry import env, metrics, train, train_cmd
from xlstm_jax.training.workdir_lock import LOCK_FILE, WorkdirLock, WorkdirLocked


def test_second_holder_is_refused_with_the_holder_named(tmp_path):
  with WorkdirLock(tmp_path):
    text = (tmp_path / LOCK_FILE).read_text()
    assert "pid" in text and "host" in text and "started" in text
    with pytest.raises(WorkdirLocked, match=r"in use by another training run \(host .*pid "):
      WorkdirLock(tmp_path).__enter__()
  with WorkdirLock(tmp_path):  # released on exit
    pass


def test_inactive_lock_takes_nothing(tmp_path):
  with WorkdirLock(tmp_path), WorkdirLock(tmp_path, active=False):
    pass


def test_lock_of_a_sigkilled_holder_does_not_block(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from xlstm_jax.training.workdir_lock import "
       "WorkdirLock; l = WorkdirLock(sys.argv[1]).__enter__(); print('held', flush=True); "
       "time.sleep(600)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(WorkdirLocked, match=f"pid {holder.pid}"):
      WorkdirLock(tmp_path).__enter__()
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with WorkdirLock(tmp_path):
    assert f"pid {holder.pid}," not in (tmp_path / LOCK_FILE).read_text()


def test_two_runs_on_one_workdir(tmp_path):
  steps = ["--config.num_steps=8", "--config.checkpoint_every=4", "--config.eval_every=0"]
  train(tmp_path / "alone", *steps)
  shared = tmp_path / "shared"
  first = subprocess.Popen(train_cmd(shared, *steps), env=env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while not (shared / "config.json").exists() and time.time() < deadline:
    time.sleep(0.05)
  assert first.poll() is None, "the first run ended before the second started"
  started = time.time()
  second = train(shared, *steps, "--config.seed=1", ok=False)
  assert time.time() - started < 60  # refused at once (the time is jax's import and the checks)
  assert second.returncode != 0
  assert f"pid {first.pid}" in second.stderr and "in use by another training run" in \
      second.stderr, second.stderr[-2000:]
  assert first.wait(timeout=600) == 0, first.stderr.read()[-2000:]
  a, b = metrics(tmp_path / "alone"), metrics(shared)
  assert sorted(b) == list(range(1, 9))
  for step in a:
    assert b[step]["loss"] == a[step]["loss"], step
  assert '"seed": 0' in (shared / "config.json").read_text()
