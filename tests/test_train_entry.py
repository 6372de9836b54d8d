"""The real entry point: a pulse run, resume after SIGKILL, NaN stop, early errors."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).parents[1]
FAST = ["--config.log_every=1", "--config.optimizer.warmup_steps=2", "--config.batch_size=8",
        "--config.seq_len=64", "--config.eval_batches=2"]


def train_cmd(workdir, *overrides, config="default.py"):
  """train.py on configs/`config` (file[:options]) with the FAST settings."""
  return [sys.executable, str(ROOT / "train.py"), f"--config={ROOT / 'configs' / config}",
          f"--workdir={workdir}", *FAST, *overrides]


def env(devices=1):
  """One CPU device, like a user's first run, or `devices` simulated ones."""
  e = dict(os.environ)
  e["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return e


def train(workdir, *overrides, devices=1, ok=True, config="default.py"):
  """Runs train.py to completion; with ok, asserts it succeeded (showing its stderr)."""
  result = subprocess.run(train_cmd(workdir, *overrides, config=config), capture_output=True,
                          text=True, env=env(devices), timeout=600)
  if ok:
    assert result.returncode == 0, result.stderr[-3000:]
  return result


def kill_after_checkpoint(workdir, step, *overrides):
  """Starts train.py, SIGKILLs it once checkpoint `step` exists (or after 300 s), and
  returns the checkpoint steps it left."""
  proc = subprocess.Popen(train_cmd(workdir, *overrides), env=env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (pathlib.Path(workdir) / "checkpoints" / str(step)).is_dir() and \
      time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return checkpoint_steps(workdir)


def checkpoint_steps(workdir):
  return sorted(int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir()
                if p.name.isdigit())


def metrics(workdir):
  """{step: last logged train entry} (a killed run may have logged steps it never saved)."""
  out = {}
  for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines():
    entry = json.loads(line)
    if "loss" in entry:
      out[entry["step"]] = entry
  return out


def test_two_step_pulse(tmp_path):
  train(tmp_path, "--config.num_steps=2", "--config.eval_every=2")
  logged = metrics(tmp_path)
  assert sorted(logged) == [1, 2]
  for entry in logged.values():
    assert entry["loss"] > 0 and entry["tokens_per_s"] > 0
  assert (tmp_path / "checkpoints" / "2").is_dir()
  assert list((tmp_path / "tensorboard").iterdir())
  evals = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
           if "eval_loss" in l]
  assert len(evals) == 1 and evals[0]["eval_loss"] > 0


def test_sigkill_then_resume_gives_the_same_curve(tmp_path):
  steps = ["--config.num_steps=24", "--config.checkpoint_every=6", "--config.eval_every=0"]
  train(tmp_path / "straight", *steps)
  killed_dir = tmp_path / "killed"
  saved = kill_after_checkpoint(killed_dir, 6, *steps)
  assert saved and saved[-1] < 24, f"the run was not interrupted (checkpoints {saved})"
  train(killed_dir, *steps)
  a, b = metrics(tmp_path / "straight"), metrics(killed_dir)
  assert sorted(b) == list(range(1, 25))
  for step in range(1, 25):
    assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-5), step


def test_nan_loss_stops_loudly(tmp_path):
  result = train(tmp_path, "--config.num_steps=30", "--config.checkpoint_every=1",
                 "--config.eval_every=0", "--config.optimizer.learning_rate=1e30",
                 "--config.optimizer.grad_clip=1e30", ok=False)
  assert result.returncode != 0
  assert "FloatingPointError: loss is nan" in result.stderr or \
      "FloatingPointError: loss is inf" in result.stderr, result.stderr[-2000:]
  saved = checkpoint_steps(tmp_path)
  logged = metrics(tmp_path)
  assert saved and max(saved) in logged  # the newest checkpoint's step had a finite loss


@pytest.mark.parametrize("override, message", [
    ("--config.batch_size=12", "batch_size=12 is not divisible by the data-parallel mesh "
     "size data\\*fsdp=8"),
    ("--config.model.num_heads=3", "not divisible by num_heads=3"),
    ("--config.data.corpus=/nonexistent/*.txt", "/nonexistent/\\*.txt"),
    ("--config.model.vocab_size=100", "model.vocab_size=100 is smaller"),
    ("--config.model.nope=1", "an override names a config field that does not exist .*"
     "--config.model.nope"),
])
def test_bad_configs_fail_before_compute(tmp_path, override, message):
  result = train(tmp_path, "--config.num_steps=2", override, devices=8, ok=False)
  assert result.returncode != 0
  assert re.search(message, result.stderr), result.stderr[-2000:]
  assert "step 1/" not in result.stderr  # refused before the first step


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path):
  steps = ["--config.num_steps=6", "--config.checkpoint_every=2", "--config.eval_every=0"]
  train(tmp_path / "straight", *steps)
  run = tmp_path / "run"
  train(run, *steps, "--config.keep_checkpoints=5")
  # Garble every array file of the newest checkpoint and start again: the run must say why
  # it skips step 6, move it aside, restore step 4, redo steps 5-6 and save step 6 anew.
  for f in (run / "checkpoints" / "6" / "state").rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.write_bytes(b"garbage" * 10)
  again = train(run, *steps)
  assert "checkpoint 6" in again.stderr and "does not restore" in again.stderr
  assert (run / "checkpoints" / "corrupt_6").is_dir()
  assert (run / "checkpoints" / "6" / "state").is_dir()
  a, b = metrics(tmp_path / "straight"), metrics(run)
  for step in range(1, 7):
    assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-5), step


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
  """num_steps counts optimizer updates: 2 steps of 2 micro-batches of 8 read the same 32
  sequences as 2 steps of 16 and end at the same parameters (to float rounding, far closer
  than a run that reads only the first 8 of each 16)."""
  import jax  # noqa: PLC0415
  import ml_collections  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from xlstm_jax.training.restore import restore_model  # noqa: PLC0415
  runs = {"accum": ["--config.batch_size=8", "--config.optimizer.grad_accum_steps=2"],
          "full": ["--config.batch_size=16"], "half": ["--config.batch_size=8"]}
  params = {}
  for name, flags in runs.items():
    workdir = tmp_path / name
    train(workdir, "--config.num_steps=2", "--config.eval_every=0", *flags)
    assert sorted(metrics(workdir)) == [1, 2] and checkpoint_steps(workdir) == [2]
    config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
    _, params[name], step = restore_model(config, workdir)
    assert step == 2

  def distance(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))
  assert distance(params["accum"], params["full"]) < 0.05 * distance(params["half"],
                                                                      params["full"])
