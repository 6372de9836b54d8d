"""The CPU benchmark scripts (benchmarks/*.py that the GPU suite does not run, and
train_throughput.py's CPU comparison) run end to end at tiny sizes and print their tables,
so none rots between the sessions that measure with them; their figures here mean nothing
(a loaded 2-core machine, shapes of a few KB)."""

import re
import sys

import numpy as np
import pytest
from test_train_entry import ROOT

from xlstm_jax import presets

sys.path.insert(0, str(ROOT / "benchmarks"))

import data_throughput  # noqa: E402
import harness_throughput  # noqa: E402
import mlstm_cpu  # noqa: E402
import mlstm_forms_cpu  # noqa: E402
import prepare_scaling  # noqa: E402
import train_throughput  # noqa: E402

NUMBER = r"\d+\.\d+"


def test_mlstm_cpu_times_each_length_and_its_growth(capsys):
  mlstm_cpu.main(["--seq_lens", "64,128", "--heads", "1", "--head_dim", "16",
                  "--chunk_size", "32", "--peer_chunk_size", "32", "--repeats", "1"])
  rows = [line for line in capsys.readouterr().out.splitlines()
          if re.match(r"\s+(64|128) \|", line)]
  assert len(rows) == 2   # the peer's columns hold figures or '-' (mlstm_kernels optional)
  assert re.search(rf"\| +{NUMBER}$", rows[1]) and rows[0].rstrip().endswith("|")


def test_mlstm_forms_cpu_compares_the_two_forms(capsys):
  mlstm_forms_cpu.main(["--shapes", "2x1x16", "--seq_lens", "48,64", "--repeats", "1"])
  out = capsys.readouterr().out
  assert "auto takes parallel up to T=" in out
  for T in (48, 64):
    assert re.search(rf"  2   1   16 +{T} \| +{NUMBER} \| +{NUMBER} \| +{NUMBER}", out), out


def test_data_throughput_sets_the_loader_beside_the_step(capsys):
  data_throughput.main(["--seq_len", "64", "--batch", "8", "--workers", "0", "--batches", "3",
                        "--warmup", "1", "--repeats", "1", "--steps", "1"])
  out = capsys.readouterr().out
  assert re.search(rf"grain, main process \| +{NUMBER} \| +\d+", out), out
  assert re.search(r"train step xlstm10_tiny \(batch 8 x 64\): .* the loader's best is "
                   rf"{NUMBER}x that \((never|IS) the limit\)", out), out


def test_harness_throughput_times_every_request_kind(capsys):
  rates = harness_throughput.main(["--examples", "1", "--batch_size", "1"])
  assert set(rates) == {"loglikelihood", "loglikelihood_rolling", "generate_until"}
  assert all(rate > 0 for rate in rates.values())
  assert "generate_until:" in capsys.readouterr().out


def test_prepare_scaling_makes_a_corpus_and_measures_a_mode(tmp_path, capsys):
  prepare_scaling.main(["make", f"--out={tmp_path / 'corpus'}", "--mb=0.05", "--files=2"])
  assert len(list((tmp_path / "corpus").glob("*.jsonl"))) == 2
  prepare_scaling.main(["run", f"--corpus={tmp_path / 'corpus'}/*.jsonl", "--seq_len=128",
                        "--num_shards=1", "--modes=memory"])
  out = capsys.readouterr().out
  assert re.search(rf"  memory \| +\d+ \| +{NUMBER} \| +{NUMBER} \| +{NUMBER} \|", out), out


def test_train_throughput_cpu_mode_without_its_peer(capsys):
  train_throughput.main(["--no_peer", "--embedding_dim", "32", "--blocks", "2", "--heads", "2",
                         "--batch", "8", "--seq_len", "32", "--steps", "1", "--repeats", "1",
                         "--warmup", "1"])
  out = capsys.readouterr().out
  assert re.search(rf"xlstm_jax \| +\d+ \| +\d+ \| +{NUMBER} \| +{NUMBER} \| +{NUMBER}% \| "
                   rf"{NUMBER} -> {NUMBER}", out), out
  assert "target ours >= 4x torch: not checked (torch not measured)" in out


def test_a_batch_the_devices_do_not_split_is_refused_by_name():
  cfg = presets.model_config("xlstm10_tiny", vocab_size=256)
  with pytest.raises(ValueError, match=r"batch_size=2 is not divisible by the data-parallel "
                     r"mesh size data\*fsdp=8"):
    train_throughput.jax_runner(cfg, np.zeros((2, 9), np.int32))
