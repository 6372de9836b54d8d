"""train.py end to end: kill + fallback + resume log every step once, the console's eval lines
and summary, the NaN stop's verdict, and messages of refused runs (which leave no workdir)."""

import json

import pytest

from test_train_entry import checkpoint_steps, kill_after_checkpoint, metrics, train


def _train_rows(workdir):
  return [json.loads(l)["step"] for l in (workdir / "metrics.jsonl").read_text().splitlines()
          if '"loss"' in l]


def test_kill_fallback_resume_log_each_step_once(tmp_path):
  steps = ["--config.num_steps=12", "--config.checkpoint_every=3", "--config.eval_every=6",
           "--config.keep_checkpoints=5"]
  straight = train(tmp_path / "straight", *steps)
  assert "eval at step 6: loss " in straight.stderr and "eval at step 12: loss " in \
      straight.stderr
  assert "done: steps 1-12 (12 run, " in straight.stderr
  assert "checkpoints " in straight.stderr and "metrics.jsonl" in straight.stderr
  run = tmp_path / "run"
  saved = kill_after_checkpoint(run, 9, *steps)
  assert len(saved) >= 2 and saved[-1] < 12, saved
  # Garble the newest checkpoint: the rerun must fall back to the one before it.
  for f in (run / "checkpoints" / str(saved[-1]) / "state").rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.write_bytes(b"garbage" * 10)
  again = train(run, *steps)
  assert f"checkpoint {saved[-1]}" in again.stderr
  assert f"done: steps {saved[-2] + 1}-12" in again.stderr
  rows = _train_rows(run)
  assert sorted(rows) == list(range(1, 13)), rows  # each step exactly once
  a, b = metrics(tmp_path / "straight"), metrics(run)
  for step in range(1, 13):
    assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-5), step


def test_nan_stop_names_the_verified_checkpoint(tmp_path):
  result = train(tmp_path, "--config.num_steps=30", "--config.checkpoint_every=1",
                 "--config.eval_every=0", "--config.optimizer.learning_rate=1e30",
                 "--config.optimizer.grad_clip=1e30", ok=False)
  assert result.returncode != 0
  saved = checkpoint_steps(tmp_path)
  assert saved, result.stderr[-2000:]
  assert f"checkpoint {max(saved)} in " in result.stderr and "is verified; a rerun resumes " \
      "from it" in result.stderr, result.stderr[-2000:]
  assert "intact" not in result.stderr


def test_warmup_longer_than_the_run_names_the_override(tmp_path):
  workdir = tmp_path / "w"
  result = train(workdir, "--config.num_steps=50", "--config.optimizer.warmup_steps=100",
                 ok=False)
  assert result.returncode != 0
  line = next(l for l in result.stderr.splitlines() if "warmup_steps=100" in l)
  assert "must be in [0, num_steps=50]" in line
  assert "--config.optimizer.warmup_steps" in line
  assert not workdir.exists()  # a refused run leaves no workdir behind


def test_binary_file_in_a_text_corpus_is_named(tmp_path):
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  (corpus / "good.txt").write_text("hello world. " * 200)
  (corpus / "blob.txt").write_bytes(bytes(range(128, 256)) * 20)
  workdir = tmp_path / "w"
  result = train(workdir, "--config.num_steps=2", f"--config.data.corpus={corpus}/*.txt",
                 ok=False)
  assert result.returncode != 0
  assert f"{corpus / 'blob.txt'}: not UTF-8 text" in result.stderr, result.stderr[-2000:]
  assert "UnicodeDecodeError" not in result.stderr
  assert not workdir.exists()
