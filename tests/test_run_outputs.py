"""What a run leaves behind and reads: eval.py on a workdir, MFU in the metrics, bf16
compute, and training from `prepare`d ArrayRecord shards."""

import json
import subprocess
import sys

import pytest

from test_train_entry import ROOT, env, metrics, train
from xlstm_jax.data import prepare

STEPS = ["--config.num_steps=4", "--config.checkpoint_every=2", "--config.eval_every=4"]


@pytest.fixture(scope="module")
def fp32_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("fp32")
  train(workdir, *STEPS)
  return workdir


def test_eval_py_restores_the_latest_checkpoint(fp32_run):
  result = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={fp32_run}",
                           "--batches=2"], capture_output=True, text=True, env=env(),
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  written = json.loads((fp32_run / "eval.json").read_text())
  assert written["step"] == 4 and written["eval_batches"] == 2
  assert f"eval loss {written['eval_loss']:.4f}" in result.stdout
  # The run evaluated the same two validation batches with the same parameters at step 4.
  logged = [json.loads(l) for l in (fp32_run / "metrics.jsonl").read_text().splitlines()
            if "eval_loss" in l]
  assert written["eval_loss"] == pytest.approx(logged[-1]["eval_loss"], rel=1e-5)
  assert json.loads((fp32_run / "config.json").read_text())["num_steps"] == 4


def test_eval_py_names_a_directory_that_is_no_run(tmp_path):
  result = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={tmp_path}"],
                          capture_output=True, text=True, env=env(), timeout=600)
  assert result.returncode != 0 and "has no config.json" in result.stderr


def test_bf16_compute_with_mfu(fp32_run, tmp_path):
  train(tmp_path, *STEPS, "--config.model.dtype=bfloat16", "--config.peak_tflops_per_device=0.5")
  bf16, fp32 = metrics(tmp_path), metrics(fp32_run)
  assert sorted(bf16) == [1, 2, 3, 4]
  # Same init (float32 master weights) and batch: the first loss differs by rounding only.
  assert bf16[1]["loss"] == pytest.approx(fp32[1]["loss"], rel=2e-2)
  assert bf16[4]["loss"] < bf16[1]["loss"]
  for entry in bf16.values():
    assert entry["mfu"] == pytest.approx(entry["model_tflops_per_s"] / 0.5, rel=1e-6)
  assert all("mfu" not in entry for entry in fp32.values())  # CPU: no datasheet peak


def test_training_on_prepared_shards_matches_the_raw_corpus(fp32_run, tmp_path):
  # One shard packs the whole split as one stream, as training on the raw corpus does.
  prepare.main(["--corpus=default", f"--out={tmp_path / 'prep'}", "--seq_len=64",
                "--val_fraction=0.05", "--seed=0", "--num_shards=1", "--num_workers=1"])
  train(tmp_path / "run", *STEPS, f"--config.data.corpus={tmp_path / 'prep'}")
  prepared, raw = metrics(tmp_path / "run"), metrics(fp32_run)
  for step in raw:
    assert prepared[step]["loss"] == pytest.approx(raw[step]["loss"], rel=1e-6), step
  wrong = train(tmp_path / "bad", *STEPS, f"--config.data.corpus={tmp_path / 'prep'}",
                "--config.seq_len=32", ok=False)
  assert wrong.returncode != 0 and "prepared with seq_len=64" in wrong.stderr


def test_training_with_a_bpe_tokenizer(tmp_path):
  tokenizer = ROOT / "tests" / "fixtures" / "bpe" / "hf_tokenizer.json"  # vocab 501
  small = train(tmp_path / "small", "--config.num_steps=2", f"--config.data.tokenizer={tokenizer}",
                ok=False)
  assert small.returncode != 0
  assert "model.vocab_size=257 is smaller than the tokenizer's 501" in small.stderr
  train(tmp_path / "run", *STEPS, f"--config.data.tokenizer={tokenizer}",
        "--config.model.vocab_size=512")
  logged = metrics(tmp_path / "run")
  assert sorted(logged) == [1, 2, 3, 4] and logged[4]["loss"] < logged[1]["loss"]
