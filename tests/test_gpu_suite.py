"""The GPU suite (benchmarks/gpu_suite.py) runs end to end on the CPU (--dry_run), so the
one command a GPU session runs never rots; its report keeps every part, and a part that
fails, times out or finds no budget is recorded while the others still run."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_suite  # noqa: E402


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("gpu_suite")
  rc = gpu_suite.main(["--out", str(out), "--dry_run", "--budget_s", "1800"])
  return out, rc, json.loads((out / "gpu_report.json").read_text())


def test_dry_run_runs_every_part(dry_run):
  out, rc, report = dry_run
  names = [p.name for p in gpu_suite.parts(out)]
  assert [p["name"] for p in report["parts"]] == names
  failed = {p["name"]: p["output_tail"][-15:] for p in report["parts"] if p["status"] != "ok"}
  assert not failed and rc == 0, failed
  assert all(p["cpu_s"] > 0 for p in report["parts"])
  assert report["dry_run"] and report["total_s"] > 0
  md = (out / "gpu_report.md").read_text()
  for name in names:
    assert f"## {name}: ok" in md
    assert (out / "parts" / f"{name}.log").stat().st_size > 0


def test_dry_run_parts_print_their_figures(dry_run):
  out, _, report = dry_run
  tail = {p["name"]: "\n".join(p["output_tail"]) for p in report["parts"]}
  env = json.loads((out / "parts" / "env.json").read_text())
  assert env["jax_backend"] == "cpu" and "jax" in env["packages"] and not env["missing"]
  assert "passed" in tail["pallas_tests"]
  assert "pallas 16:16:16:4:2" in tail["mlstm_tfla"] and "pallas 16:16:16:8:3" in tail["mlstm_tfla"]
  assert "best pallas config (fwd+bwd): 16:16:16:4:2" in tail["mlstm_tfla"] or \
      "best pallas config (fwd+bwd): 16:16:16:8:3" in tail["mlstm_tfla"]
  assert "INTERPRET MODE" in tail["mlstm_7b"]
  assert "xlstm10_tiny" in tail["train"] and "llama_tiny" in tail["train"]
  assert "ms/token" in tail["decode"]
  slstm = json.loads((out / "parts" / "slstm.json").read_text())
  assert [r["impl"] for r in slstm["rows"]][:1] == ["scan"]
  assert all(r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 for r in slstm["rows"])


def test_failed_and_timed_out_parts_are_recorded(tmp_path):
  crash = gpu_suite.Part("crash", 10, (sys.executable, "-c", "print('partial'); raise SystemExit(3)"),
                         ())
  slow = gpu_suite.Part("slow", 10, (sys.executable, "-c",
                                     "import time; print('started', flush=True); time.sleep(60)"),
                        ())
  r = gpu_suite.run_part(crash, 30, tmp_path / "crash.log", dry_run=False)
  assert (r["status"], r["returncode"], r["output_tail"]) == ("failed", 3, ["partial"])
  r = gpu_suite.run_part(slow, 2, tmp_path / "slow.log", dry_run=False)
  assert r["status"] == "timeout" and r["output_tail"] == ["started"] and r["seconds"] < 30


def test_no_budget_skips_parts_and_still_reports(tmp_path, capsys):
  assert gpu_suite.main(["--out", str(tmp_path), "--budget_s", "0", "--only", "env,decode"]) == 1
  report = json.loads((tmp_path / "gpu_report.json").read_text())
  assert [(p["name"], p["status"]) for p in report["parts"]] == [("env", "skipped"),
                                                                   ("decode", "skipped")]
  with pytest.raises(SystemExit):
    gpu_suite.main(["--out", str(tmp_path), "--only", "nope"])
  assert "unknown parts ['nope']" in capsys.readouterr().err


def test_compiled_switch_runs_on_the_accelerator_at_full_precision():
  """XLSTM_PALLAS_COMPILED=1 leaves the platform to jax (the GPU where there is one, so
  the kernels compile) and sets float32 matmuls to full precision for the references."""
  code = ("import os; import conftest, jax; "
          "print(os.environ.get('JAX_PLATFORMS'), jax.config.jax_default_matmul_precision)")
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  run = lambda flag: subprocess.run(  # noqa: E731
      [sys.executable, "-c", code], cwd=ROOT / "tests", capture_output=True, text=True,
      env={**env, "XLSTM_PALLAS_COMPILED": flag, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
      check=True).stdout.split()
  assert run("1") == ["None", "highest"]
  assert run("0") == ["cpu", "None"]


def test_mlstm_benchmark_reports_a_failing_config_and_goes_on():
  """A configuration the kernels refuse (chunk 24: Triton needs powers of two) is printed
  as a FAILED row, not a crash that would lose the suite part's other rows."""
  out = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "mlstm_kernels_gpu.py"), *gpu_suite.TINY_MLSTM,
       "--configs", "24:16:16:4:2"], cwd=ROOT, capture_output=True, text=True, check=True,
      env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}", "JAX_PLATFORMS": "cpu"})
  row = [line for line in out.stdout.splitlines() if "pallas 24:16:16:4:2" in line]
  assert len(row) == 1 and "| FAILED ValueError: chunk=24" in row[0], out.stdout
  assert "best pallas config (fwd+bwd): none ran" in out.stdout
