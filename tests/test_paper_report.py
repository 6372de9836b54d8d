"""The paper-reproduction runner and report: runs are skipped once evaluated, and each
finding's verdict follows from the numbers in the runs' eval.json files."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from test_task_runs import _config
from test_train_entry import ROOT
from xlstm_jax.evaluation import paper
from xlstm_jax.evaluation.paper_runs import (FORMAL_FAMILIES, RESULT_FILES, Run, archive_run,
                                              load)
from xlstm_jax.evaluation.paper_report import write_report


def _fake_run(runs_dir, run, config, result):
  workdir = runs_dir / run.table / run.name
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text(json.dumps(config.to_dict()))
  (workdir / "eval.json").write_text(json.dumps(result))


def _task_result(scaled, lengths=(2, 3, 4)):
  return {"step": 10, "accuracy": 0.5, "scaled_accuracy": scaled,
          "per_length": {str(n): {"accuracy": 0.5, "scaled_accuracy": scaled} for n in lengths}}


def _extrapolation_result(ratios):
  factors = {str(f): {"perplexity": 4.0 * r, "bucket_perplexity": [4.0 * r] * f,
                      "sequences": 16 // f, "ratio_to_1x": r, "last_bucket_ratio_to_1x": r}
             for f, r in ratios.items()}
  return {"step": 10, "extrapolation": {"context": 64, "tolerance": 0.1, "factors": factors}}


def test_verdicts_follow_the_numbers(tmp_path):
  tables = {t: runs for t, runs in paper.experiments().items()
            if t not in ("formal", "mqar_grid")}
  revision_scores = {"mlstm_exp": 0.95, "mlstm_sigmoid": 0.2, "slstm_exp": 0.97,
                     "lstm_sigmoid": 0.6,   # the LSTM reaches 0.6: this pair fails
                     "slstm_exp_nomix": 0.92, "lstm_sigmoid_nomix": 0.1,
                     "slstm_exp_nomix_levels64": 0.95, "lstm_sigmoid_nomix_levels64": 0.2}
  for run in tables["revision"]:
    model, gate = run.name.split("_")[:2]
    levels = 64 if run.name.endswith("levels64") else 8
    _fake_run(tmp_path, run, _config("revision", f"model={model},igate={gate},levels={levels}"),
              _task_result(revision_scores[run.name]))
  mqar_scores = {"xlstm11": 0.9, "lstm": 0.3, "llama": 0.95}   # mlstm, llama_noconv not run
  for run in tables["mqar"]:
    if run.name in mqar_scores:
      _fake_run(tmp_path, run, _config("mqar", f"model={run.name}"),
                _task_result(mqar_scores[run.name], (64,)))
  text_config = _config("default", None)
  _fake_run(tmp_path, tables["extrapolation"][0], text_config,
            _extrapolation_result({1: 1.0, 2: 1.02, 4: 1.05, 8: 1.08, 16: 1.2}))
  _fake_run(tmp_path, tables["extrapolation"][1], text_config,
            _extrapolation_result({1: 1.0, 2: 1.3, 4: 2.0, 8: 3.0, 16: 4.0}))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  verdict = {line.split("|")[1].split(":")[0].strip(): line.split("|")[2].strip()
             for line in report.splitlines() if line.startswith("| ") and "**" in line}
  assert verdict == {"MQAR": "**reproduced**", "Revision": "**not reproduced**",
                     "Extrapolation": "**reproduced**"}
  assert "| xLSTM[1:0] | sigmoid | - | 8 | 0.200 |" in report
  assert "| LSTM | sigmoid | no | 64 | 0.200 |" in report
  assert ("- sLSTM vs LSTM, scalar memory with memory mixing: exponential 0.970, sigmoid "
          "0.600: **not reproduced**") in report
  assert "- xLSTM[1:0], matrix memory: exponential 0.950, sigmoid 0.200: **reproduced**" in report
  assert "`mqar/mlstm`, `mqar/llama_noconv`" in report   # unfinished runs are named
  assert "| Llama (C=64) | 4.000 (1.00x) |" in report
  for png in ("revision.png", "extrapolation.png"):
    assert (tmp_path / "out" / png).stat().st_size > 1000 and f"({png})" in report


def test_mqar_finding_needs_the_transformer_to_solve_it(tmp_path):
  tables = {"mqar": paper.experiments()["mqar"]}
  for run in tables["mqar"]:
    scaled = {"xlstm11": 1.0, "lstm": 0.15, "llama": 0.85}.get(run.name)
    if scaled is not None:
      _fake_run(tmp_path, run, _config("mqar", f"model={run.name}"), _task_result(scaled, (64,)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "Verdict: **not reproduced**." in report    # Llama 0.85 < 0.9
  assert "| Llama | " in report and "| Llama without the short conv | - | - |" in report


def test_formal_findings_need_every_run(tmp_path):
  tables = {"formal": paper.experiments()["formal"]}
  for run in tables["formal"]:
    task, family = run.name.rsplit("_", 1)
    if task == "parity":
      good = family in ("slstm", "xlstm11")
      _fake_run(tmp_path, run, _config("formal", f"task={task},model={family}"),
                _task_result(0.95 if good else 0.1, (40, 41)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "Verdict: **not run yet**." in report     # modular arithmetic is missing
  assert "| parity | 0.950 | 0.950 | 0.100 | 0.100 | 0.100 |" in report   # LSTM: shown only
  assert "| modular_arithmetic | - | - | - | - | - |" in report
  assert "| parity | xLSTM[0:1] | >= 0.9 | 0.950 | yes |" in report     # the checks so far
  assert "| parity | Llama | < 0.3 | 0.100 | yes |" in report
  assert "| modular_arithmetic | xLSTM[1:1] | >= 0.9 | - | not run yet |" in report


def test_one_failed_row_decides_before_the_rest_ran(tmp_path):
  tables = {"formal": paper.experiments()["formal"]}
  run = next(r for r in tables["formal"] if r.name == "modular_arithmetic_slstm")
  _fake_run(tmp_path, run, _config("formal", "task=modular_arithmetic,model=slstm"),
            _task_result(0.08, (40, 41)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "Verdict: **not reproduced**." in report
  assert "| modular_arithmetic | xLSTM[0:1] | >= 0.9 | 0.080 | **no** |" in report
  assert "7 of 8 rows are not run yet; a failed row already decides the verdict" in report
  # revision: one matched pair fails (exponential 0.5 < 0.9) while the other three are missing
  tables = {"revision": paper.experiments()["revision"]}
  for run in tables["revision"][:2]:
    model, gate = run.name.split("_")
    _fake_run(tmp_path, run, _config("revision", f"model={model},igate={gate}"),
              _task_result(0.5 if gate == "exp" else 0.2))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "exponential 0.500, sigmoid 0.200: **not reproduced**" in report
  assert "Verdict: **not reproduced**." in report


def test_formal_training_curves_are_plotted_where_kept(tmp_path):
  tables = {"formal": paper.experiments()["formal"]}
  for run in tables["formal"]:
    task, family = run.name.rsplit("_", 1)
    if task == "parity" and family in ("slstm", "llama"):
      _fake_run(tmp_path, run, _config("formal", f"task={task},model={family}"),
                _task_result(0.95, (40, 41)))
      if family == "slstm":   # a curve with a train-only line between its evaluations
        (tmp_path / run.table / run.name / "metrics.jsonl").write_text(
            '{"step": 200, "eval_accuracy": 0.5}\n{"step": 300, "loss": 0.4}\n'
            '{"step": 400, "eval_accuracy": 1.0}\n')
  out = tmp_path / "out"
  report = write_report(tmp_path, out, tables).read_text()
  assert "Validation accuracy during training (lengths 3..40, in distribution); no curve " \
      "was kept for Llama" in report and "![parity training](formal_parity_training.png)" in report
  assert (out / "formal_parity_training.png").stat().st_size > 0
  assert "modular_arithmetic training" not in report    # none of its runs finished
  assert load(tmp_path, tables["formal"][0])["metrics"][1] == {"step": 300, "loss": 0.4}


def test_formal_finding_fails_on_one_model(tmp_path):
  tables = {"formal": paper.experiments()["formal"]}
  for run in tables["formal"]:
    task, family = run.name.rsplit("_", 1)
    scaled = 0.5 if (task, family) == ("modular_arithmetic", "xlstm11") else (
        0.95 if family in ("slstm", "xlstm11") else 0.1)
    _fake_run(tmp_path, run, _config("formal", f"task={task},model={family}"),
              _task_result(scaled, (40, 41)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "Verdict: **not reproduced**." in report
  assert "| modular_arithmetic | xLSTM[1:1] | >= 0.9 | 0.500 | **no** |" in report
  assert "this report's reading of the paper's claim" in report   # the bars are ours


@pytest.mark.parametrize("lstm, verdict", [(0.5, "reproduced"), (0.8, "not reproduced")])
def test_mqar_grid_verdict_follows_the_cell_means(tmp_path, lstm, verdict):
  tables = {"mqar_grid": paper.experiments()["mqar_grid"]}
  base = {"llama": 1.0, "xlstm11": 0.95, "mlstm": 0.96, "lstm": lstm}   # [1:0] within 0.02
  for run in tables["mqar_grid"]:
    family, context, pairs = run.name.split("_")
    scaled = base[family] - (0.1 if pairs == "p32" else 0.0)
    _fake_run(tmp_path, run, _config("mqar", f"model={family}"),
              _task_result(scaled, (int(context[1:]),)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert f"Verdict: **{verdict}**." in report     # xLSTM[1:1] - LSTM: 0.45, then 0.15
  assert "| 256 | 32 | 0.850 | 0.860 | 0.900 |" in report
  assert "| mean | | 0.925 | 0.935 | 0.975 |" in report
  assert (tmp_path / "out" / "mqar_grid.png").stat().st_size > 1000


def test_mqar_grid_waits_for_every_cell(tmp_path):
  tables = {"mqar_grid": paper.experiments()["mqar_grid"]}
  run = tables["mqar_grid"][0]
  _fake_run(tmp_path, run, _config("mqar", "model=xlstm11"), _task_result(0.7, (64,)))
  report = write_report(tmp_path, tmp_path / "out", tables).read_text()
  assert "Verdict: **not run yet**." in report and "| 64 | 4 | 0.700 | - | - | - |" in report
  assert "| mean | | - | - | - | - |" in report and "mqar_grid.png" in report


def test_run_one_trains_evaluates_then_skips(tmp_path):
  run = Run("revision", "mlstm_exp", "configs/revision.py:model=mlstm,igate=exp",
            ("--config.num_steps=2", "--config.batch_size=8", "--config.log_every=1",
             "--config.optimizer.warmup_steps=1",
             "--config.eval_every=0", "--config.data.test_lengths=(2,3)",
             "--config.data.test_examples=4"))
  assert paper.run_one(run, tmp_path).startswith("revision/mlstm_exp: done in")
  result = json.loads((tmp_path / "revision" / "mlstm_exp" / "eval.json").read_text())
  assert result["step"] == 2 and sorted(result["per_length"]) == ["2", "3"]
  assert paper.run_one(run, tmp_path) == "revision/mlstm_exp: done before"
  wall = load(tmp_path, run)["wall"]       # one attempt, recorded
  assert len(wall) == 1 and wall[0]["seconds"] > 0 and wall[0]["runs_at_once"] == 1
  report = write_report(tmp_path, tmp_path / "out", {"revision": [run]}).read_text()
  minutes = f"{wall[0]['seconds'] / 60:.0f}"
  assert "| revision/mlstm_exp | 63,696 | 2 | 8 | " in report
  assert f"| {minutes} | {wall[0]['machine']}, 1 run at once |" in report
  bad = Run("revision", "bad", "configs/revision.py:igate=tanh")
  assert "FAILED" in paper.run_one(bad, tmp_path)
  assert "igate='tanh' must be exp or sigmoid" in (tmp_path / "revision" / "bad" /
                                                   "run.log").read_text()


def test_cli_runs_in_parallel_skips_done_runs_and_names_failures(tmp_path, capsys,
                                                                   monkeypatch):
  tables = paper.experiments()
  text_config = _config("default", None)
  for run in tables["extrapolation"]:
    _fake_run(tmp_path, run, text_config, _extrapolation_result({1: 1.0, 2: 1.0}))
  archive = f"--archive={tmp_path / 'archive'}"
  paper.main([f"--runs={tmp_path}", f"--out={tmp_path / 'out'}", "--tables=extrapolation",
              "--jobs=2", archive])
  out = capsys.readouterr().out
  assert out.count("done before") == 2 and "[2/2]" in out
  assert "## Length extrapolation" in (tmp_path / "out" / "paper_reproduction.md").read_text()
  paper.main([f"--runs={tmp_path}", f"--out={tmp_path / 'again'}", "--report_only", archive])
  assert "done before" not in capsys.readouterr().out
  assert (tmp_path / "again" / "paper_reproduction.md").is_file()
  monkeypatch.setattr(paper, "run_one",
                      lambda r, d, a, **_: f"{r.table}/{r.name}: FAILED, boom")
  with pytest.raises(SystemExit, match=r"5 runs failed \(see their run.log\): ") as exit_:
    paper.main([f"--runs={tmp_path}", f"--out={tmp_path / 'out'}", "--tables=mqar", archive])
  assert sorted(str(exit_.value).split(": ")[1].split(", ")) == sorted(
      f"mqar/{r.name}" for r in tables["mqar"])


def test_unknown_table_is_an_error(tmp_path):
  out = subprocess.run([sys.executable, "-m", "xlstm_jax.evaluation.paper", "--tables=nope",
                        f"--runs={tmp_path}"], capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 2 and "unknown tables ['nope']" in out.stderr


def test_only_picks_runs_in_its_order_and_rejects_a_pattern_matching_none(tmp_path, capsys,
                                                                          monkeypatch):
  started = []
  monkeypatch.setattr(paper, "run_one",
                      lambda r, d, a, **_: started.append(f"{r.table}/{r.name}") or "ok")
  with pytest.raises(SystemExit, match="runs failed"):   # the fake runs wrote no eval.json
    paper.main([f"--runs={tmp_path}", f"--out={tmp_path / 'out'}", "--archive=",
                "--tables=formal,mqar", "--only=formal/parity_llama,mqar/*,formal/parity_*"])
  parity = [f"formal/parity_{m}" for m in FORMAL_FAMILIES if m != "llama"]
  mqar = [f"mqar/{r.name}" for r in paper.experiments()["mqar"]]
  assert started == ["formal/parity_llama", *mqar, *parity]   # each once, in pattern order
  with pytest.raises(SystemExit):
    paper.main([f"--runs={tmp_path}", "--tables=mqar", "--only=formal/*", "--archive="])
  assert "--only='formal/*' matches no run of the tables ['mqar']" in capsys.readouterr().err


def test_archived_results_outlive_the_runs_directory(tmp_path):
  run = paper.experiments()["revision"][0]
  runs, archive = tmp_path / "runs", tmp_path / "archive"
  with pytest.raises(FileNotFoundError, match="has no eval.json"):
    archive_run(runs, run, archive)
  _fake_run(runs, run, _config("revision", "model=mlstm"), {**_task_result(0.5), "step": 7})
  record_wall = runs / run.table / run.name / "wall.jsonl"
  record_wall.write_text('{"seconds": 60, "date": "2026-12-06", "machine": "m", "jobs": 2}\n')
  (runs / run.table / run.name / "metrics.jsonl").write_text('{"step": 7, "loss": 1.5}\n')
  assert paper.run_one(run, runs, archive=archive) == f"revision/{run.name}: done before"
  assert sorted(f.name for f in (archive / run.table / run.name).iterdir()) == sorted(
      RESULT_FILES)
  shutil.rmtree(runs)                                    # the machine's runs are gone
  assert load(runs, run) is None
  kept = load(runs, run, archive)
  assert kept["eval"]["step"] == 7 and kept["wall"][0]["jobs"] == 2
  assert "loss" in (archive / run.table / run.name / "metrics.jsonl").read_text()  # the curve
  assert paper.run_one(run, runs, archive=archive) == f"revision/{run.name}: done before"
  report = write_report(runs, tmp_path / "out", {"revision": [run]}, archive).read_text()
  assert f"| revision/{run.name} |" in report and "`archive/`" in report
  # a line from before attempts counted the machine's runs says what it counted
  assert "| m, 2 runs in its runner (*) |" in report
  assert "(*) Recorded before attempts counted the runs sharing the machine" in report


def test_a_run_that_finishes_is_archived_with_its_wall_time(tmp_path, monkeypatch):
  run = paper.experiments()["revision"][0]
  runs, archive = tmp_path / "runs", tmp_path / "archive"

  def fake_train_and_eval(workdir, config, overrides, eval_args):
    # while it trains, another runner starts a run beside it (a live process); a killed
    # attempt's file (its process gone) and one from before attempts kept a pid do not count
    for name, attempt in (("beside", {"start": 0.0, "pid": os.getpid()}),
                          ("killed", {"start": 0.0, "pid": _dead_pid()}),
                          ("old", {"start": 0.0, "jobs": 1})):
      (runs / "formal" / name).mkdir(parents=True)
      (runs / "formal" / name / paper.ATTEMPT).write_text(json.dumps(attempt))
    _fake_run(runs, run, _config("revision", "model=mlstm"), _task_result(0.5))
    return None   # no error

  monkeypatch.setattr(paper.runner, "train_and_eval", fake_train_and_eval)
  assert paper.run_one(run, runs, archive=archive).startswith(f"revision/{run.name}: done in")
  assert paper.runs_in_flight(runs) == 1   # its own attempt ended; the one beside runs on
  kept = load(tmp_path / "gone", run, archive)
  assert kept["eval"]["scaled_accuracy"] == 0.5 and kept["wall"][0]["runs_at_once"] == 2
  report = write_report(tmp_path / "gone", tmp_path / "out", {"revision": [run]},
                        archive).read_text()
  assert "CPUs, 2 runs at once |" in report and "(*)" not in report


def _dead_pid() -> int:
  """The pid of a process that has ended."""
  child = subprocess.Popen([sys.executable, "-c", "pass"])
  child.wait()
  return child.pid


def test_issue21_summary_tables_and_plots_the_chain_runs(tmp_path):
  """docs/results/issue21_summary.py, the summary of the earlier issue-21 chain."""
  sys.path.insert(0, str(ROOT / "docs" / "results"))
  import issue21_summary  # noqa: PLC0415
  runs = tmp_path / "runs"
  done, going = runs / "parity_slstm", runs / "parity_llama"
  for run, metrics in ((done, ['{"step": 200, "eval_accuracy": 0.5}', '{"step": 400, '
                               '"eval_accuracy": 1.0, "early_stop": true}']),
                       (going, ['{"step": 100, "loss": 0.7}'])):
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("\n".join(metrics) + "\n")
  (done / "eval.json").write_text(json.dumps({**_task_result(0.9, (40, 41)),
                                              "task": "parity"}))
  (runs / "runs.tsv").write_text("parity_slstm\t10:00\t11:00\t400\tcpu\n")
  table = issue21_summary.summarize(runs, tmp_path / "out").splitlines()
  assert table[2] == "| parity_llama | 100 | - | no | not evaluated | running or stopped |"
  assert table[3] == "| parity_slstm | 400 | 1.000 | yes | 0.900 | 10:00 .. 11:00 (cpu) |"
  for name in ("validation.png", "parity_length_accuracy.png"):
    assert (tmp_path / "out" / name).stat().st_size > 0
