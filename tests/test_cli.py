"""The entry points' command line (xlstm_jax.train, xlstm_jax.eval, xlstm_jax.cli): --help
lists the config fields with their comments and exits 0, flag errors are one line with exit
code 2, run errors one line without a traceback, the default config resolves from any
directory, and eval's out-of-range flags are refused before any work."""

import pathlib
import subprocess
import sys

import pytest

from test_train_entry import ROOT, env
from xlstm_jax import cli
from xlstm_jax import eval as eval_main
from xlstm_jax import train as train_main


def _exit(capsys, parse, argv):
  """(exit code, stdout, stderr) of parse(argv), which must exit."""
  with pytest.raises(SystemExit) as exit_:
    parse(argv)
  out = capsys.readouterr()
  return exit_.value.code, out.out, out.err


def test_train_help_lists_the_config_fields_with_their_comments_and_exits_0(capsys):
  code, out, _ = _exit(capsys, train_main.parse_flags, ["train", "--help"])
  assert code == 0
  comments = cli.field_comments((ROOT / "configs" / "default.py").read_text())
  assert comments["num_steps"] == "optimizer steps (the schedule spans exactly these)"
  assert f"  --config.num_steps=300\n      {comments['num_steps']}" in out
  # a comment continued on the next line is joined; model.* comments come from ModelConfig
  assert "global batch (sequences) per micro-batch, split over processes; x " in out
  assert "  --config.model.igate='exp'\n      exp | sigmoid" in out
  assert "--workdir: run directory" in out
  code, out, _ = _exit(capsys, train_main.parse_flags,
                       ["train", f"--config={ROOT / 'configs' / 'default.py'}:llama_tiny", "-h"])
  assert code == 0 and "--config.model.arch='llama'" in out


def test_field_comments_of_config_files_and_dataclasses():
  source = ("  c.a = 1        # first\n"
            "                 # and more\n"
            "  c.data.b = 'x'  # second\n"
            "  c.c = 2\n"
            "  # a section header, not a continuation\n"
            "  name: int = 3   # a dataclass field\n")
  assert cli.field_comments(source) == {"a": "first and more", "data.b": "second",
                                        "name": "a dataclass field"}
  assert cli.field_comments("  x: str = 'y'  # z\n", "model.") == {"model.x": "z"}


@pytest.mark.parametrize("argv, message", [
    (["--workdir=w", "--config.num_steps=abc"],
     "error: flag --config.num_steps=abc: invalid literal for int()"),
    ([], "error: flag --workdir=None: Flag --workdir must have a value other than None"),
    (["--workdir=w", "--config.model.nope=1"],
     "error: an override names a config field that does not exist"),
    (["--workdir=w", "--bogus=1"], "error: Unknown command line flag 'bogus'"),
])
def test_train_flag_errors_are_one_line_with_exit_code_2(capsys, argv, message):
  code, _, err = _exit(capsys, train_main.parse_flags, ["train", *argv])
  assert code == 2
  assert err.startswith(message) and err.count("\n") == 1, err


def test_default_config_resolves_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert pathlib.Path(cli.DEFAULT_CONFIG).is_file()
  train_main.parse_flags(["train", f"--workdir={tmp_path}", "--config.num_steps=7"])
  assert train_main.FLAGS.config.num_steps == 7
  assert train_main.FLAGS.config.model.vocab_size == 257   # configs/default.py's


def test_run_errors_are_one_line_without_traceback(capsys):
  def refuse():
    raise ValueError("warmup_steps=100 must be in\n  [0, num_steps=50]")
  with pytest.raises(SystemExit) as exit_:
    cli.run_or_exit(refuse)
  assert exit_.value.code == 1
  assert capsys.readouterr().err == "error: warmup_steps=100 must be in [0, num_steps=50]\n"
  def diverge():
    raise FloatingPointError("loss is nan at step 3")
  with pytest.raises(SystemExit):
    cli.run_or_exit(diverge)
  assert capsys.readouterr().err == "error: FloatingPointError: loss is nan at step 3\n"
  assert cli.run_or_exit(lambda x: x + 1, 1) == 2


def test_refused_run_from_another_directory_is_one_line(tmp_path):
  """The root wrapper, run from outside the checkout with the default config: the refusal
  is one line on stderr with no traceback, exit code 1."""
  result = subprocess.run([sys.executable, str(ROOT / "train.py"), f"--workdir={tmp_path / 'w'}",
                           "--config.num_steps=2", "--config.model.num_heads=3"],
                          capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=300)
  assert result.returncode == 1, result.stderr[-2000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "num_heads=3" in errors[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag, message", [
    ("--temperature=-1", "error: --temperature=-1.0 must be >= 0 (0: greedy"),
    ("--batches=-1", "error: --batches=-1 must be >= 0 (0: all of them)"),
    ("--samples=-2", "error: --samples=-2 must be >= 0"),
    ("--max_new_tokens=0", "error: --max_new_tokens=0 must be >= 1"),
    ("--extrapolate=1,x", "error: --extrapolate=1,x must be positive ints"),
])
def test_eval_refuses_out_of_range_flags_before_any_work(tmp_path, capsys, flag, message):
  missing = tmp_path / "no_such_run"   # evaluating it would fail differently
  eval_main.parse_flags(["eval", f"--workdir={missing}", flag])
  code, _, err = _exit(capsys, eval_main.main, ["eval"])
  assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
  assert not missing.exists()


def test_eval_greedy_samples_warn_and_help_says_so(tmp_path, capsys):
  eval_main.parse_flags(["eval", f"--workdir={tmp_path}", "--samples=3", "--prompt=The "])
  factors, warning = eval_main.check_flags(eval_main.FLAGS)
  assert factors == [] and "--samples=3 with --temperature=0 (greedy)" in warning
  eval_main.parse_flags(["eval", f"--workdir={tmp_path}", "--samples=3", "--prompt=The ",
                         "--temperature=0.7"])
  assert eval_main.check_flags(eval_main.FLAGS)[1] is None
  code, out, _ = _exit(capsys, eval_main.parse_flags, ["eval", "--help"])
  assert code == 0 and "--temperature: sampling temperature, >= 0 (0: greedy" in out
  assert "--batches: validation batches to use, >= 0 (0: all of them)" in out


def test_eval_of_a_directory_without_a_run_is_one_line(tmp_path, capsys):
  eval_main.parse_flags(["eval", f"--workdir={tmp_path}"])
  code, _, err = _exit(capsys, eval_main.main, ["eval"])
  assert code == 1 and err == f"error: {tmp_path} has no config.json; is it the workdir of a " \
                              "train.py run?\n"


def _modules_after(imports: str) -> list[str]:
  """The xlstm_jax and matplotlib modules a fresh interpreter holds after `imports`."""
  code = (f"import sys\n{imports}\n"
          "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('xlstm_jax', "
          "'matplotlib')))))\n")
  return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                        env=env(), check=True).stdout.split()


def test_imports_point_one_way():
  """Training imports neither evaluation, scaling nor experiments (the MFU estimate comes
  from counting); the pure fit and the paper's run table import none of their reports."""
  loaded = _modules_after("import xlstm_jax.training.loop")
  assert "xlstm_jax.counting" in loaded
  assert not [m for m in loaded if m.startswith(("xlstm_jax.evaluation", "xlstm_jax.scaling",
                                                 "xlstm_jax.experiments", "matplotlib"))]
  loaded = _modules_after("import xlstm_jax.scaling.fit, xlstm_jax.evaluation.paper_runs")
  assert not {"xlstm_jax.scaling.fit_plots", "xlstm_jax.scaling.fit_report",
              "xlstm_jax.evaluation.paper", "xlstm_jax.evaluation.paper_report",
              "matplotlib"} & set(loaded)
