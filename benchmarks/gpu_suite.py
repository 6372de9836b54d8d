"""The GPU suite: one command that proves the kernels on a GPU and gathers every GPU figure.

Each part runs as its own subprocess, time-boxed (its cap, and never past the suite's
--budget_s); a part that fails or runs out of time is recorded with its output so far,
and the next part still runs. After every part the report is rewritten, so a suite
killed from outside keeps what finished:
  OUT/gpu_report.json   per part: status (ok / failed / timeout / skipped), seconds,
                        return code, command, the output's last lines
  OUT/gpu_report.md     the same as a page to paste into benchmarks/RESULTS.md
  OUT/parts/<part>.log  each part's whole output
Parts, in order of value (the later ones get what budget is left):
  env           device, driver, versions, missing packages (benchmarks/gpu_env.py)
  pallas_tests  the Pallas tests compiled for the hardware (XLSTM_PALLAS_COMPILED=1)
  mlstm_tfla    mLSTM kernels at the published TFLA shapes vs cuDNN flash attention,
                with a block-size sweep (benchmarks/mlstm_kernels_gpu.py --tfla)
  mlstm_7b      the same at the xLSTM 7B model's shapes
  train         tokens/s and MFU, xLSTM[1:0] and Llama at 125M/350M, context 2048, bf16
  slstm         the sLSTM scan form (and a fused kernel if present) at the 1.3B shape
  decode        generation: per-token time and memory at 1K..32K (125M models)
--dry_run runs every part on the CPU with tiny shapes and the kernels interpreted (a
smoke test of the suite itself, tests/test_gpu_suite.py; its figures mean nothing).

  python benchmarks/gpu_suite.py --out /tmp/gpu --budget_s 480
  python benchmarks/gpu_suite.py --out /tmp/dry --dry_run
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PY = sys.executable
TAIL_LINES = 40
# --dry_run's mLSTM shapes (the script's flags come after --tfla, which they override).
TINY_MLSTM = ("--interpret", "--seq_lens", "32", "--tokens", "32", "--heads", "1", "--dk", "16",
              "--dv", "16", "--attn_heads", "1", "--attn_head_dim", "16", "--repeats", "1")

# --dry_run compiles cheaply (its figures mean nothing): CPU code at LLVM -O0, and one
# persistent compilation cache shared by its parts (the same program compiles once).
DRY_RUN_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
DRY_RUN_ENV = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
               "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@dataclasses.dataclass(frozen=True)
class Part:
  name: str
  cap_s: int       # the most this part may take on the GPU
  command: tuple   # argv on the GPU
  dry_command: tuple  # argv for --dry_run (CPU, tiny, interpreted)
  env: tuple = ()  # extra (key, value) environment


def _script(name, *args):
  return (PY, str(BENCH / name), *args)


def pallas_test_files() -> list[str]:
  """Every Pallas kernel test file (tests/test_pallas_*.py), so later kernels join."""
  return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_pallas_*.py"))


def parts(out: pathlib.Path) -> list[Part]:
  """The suite's parts in run order (see the module docstring)."""
  # No -x: on the GPU every failing kernel test is worth knowing, not just the first.
  # -q comes from pytest.ini (a second -q would drop the "N passed" line).
  pytest = (PY, "-m", "pytest", "-p", "no:cacheprovider", "--no-header", "-rfE")
  return [
      Part("env", 60, _script("gpu_env.py", "--out", str(out / "parts" / "env.json")),
           _script("gpu_env.py", "--out", str(out / "parts" / "env.json"))),
      Part("pallas_tests", 150, (*pytest, *pallas_test_files()),
           # The harness only: the kernels' interpret mode is exercised by the mlstm parts.
           (*pytest, "-x", "tests/test_pallas_mlstm.py", "-k",
            "test_unsupported_shapes or test_dispatch_errors_and_defaults"),
           env=(("XLSTM_PALLAS_COMPILED", "1"),)),
      Part("mlstm_tfla", 120,
           _script("mlstm_kernels_gpu.py", "--tfla", "--repeats", "3",
                   "--configs", "64:64:64:4:2,64:64:128:4:3,128:64:64:8:2"),
           _script("mlstm_kernels_gpu.py", "--tfla", *TINY_MLSTM,
                   # Two configs, the same tiles: interpret mode ignores warps and stages,
                   # so the second (and mlstm_7b's) is a compilation-cache hit.
                   "--configs", "16:16:16:4:2,16:16:16:8:3")),
      Part("mlstm_7b", 60, _script("mlstm_kernels_gpu.py", "--repeats", "3"),
           _script("mlstm_kernels_gpu.py", *TINY_MLSTM, "--configs", "16:16:16:4:2")),
      # The target model first; blocks scanned so each model compiles one block (an
      # unrolled 48-block 350M step may compile for minutes, past this part's cap).
      Part("train", 150, _script("train_throughput.py", "--gpu", "--steps", "5",
                                 "--repeats", "2", "--scan_blocks", "--models",
                                 "xlstm10_350m,llama_350m,xlstm10_125m,llama_125m"),
           _script("train_throughput.py", "--gpu", "--models", "xlstm10_tiny,llama_tiny",
                   "--seq_len", "16", "--batch", "1", "--backend", "chunkwise",
                   "--steps", "1", "--repeats", "1", "--warmup", "1")),
      Part("slstm", 60, _script("slstm_gpu.py", "--shapes", "1.3b", "--repeats", "3",
                                "--out", str(out / "parts" / "slstm.json")),
           _script("slstm_gpu.py", "--dry_run", "--out", str(out / "parts" / "slstm.json"))),
      Part("decode", 90, _script("decode.py", "--size", "125m", "--dtype", "bfloat16",
                                 "--contexts", "1024,4096,8192,16384,32768", "--repeats", "3"),
           _script("decode.py", "--contexts", "16", "--new_tokens", "4", "--repeats", "1",
                   "--embedding_dim", "32", "--layers", "1", "--vocab", "64")),
  ]


def _children_cpu_s() -> float:
  """CPU seconds (user + system) of this process's finished children: a part's cost
  apart from the machine's load (a killed part's count is lost with it)."""
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def run_part(part: Part, timeout_s: float, log: pathlib.Path, dry_run: bool) -> dict:
  """Runs one part; its output goes to `log` as it comes (kept on a timeout)."""
  command = part.dry_command if dry_run else part.command
  env = {**os.environ, "PYTHONUNBUFFERED": "1",
         "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(BENCH),
                                                      os.environ.get("PYTHONPATH")]))}
  # One device per process as on the GPU machine, even when started from the test suite
  # (whose XLA_FLAGS simulate 8 CPU devices that a batch of 1 cannot be split over).
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if "force_host_platform_device_count" not in f)
  if dry_run:
    env.update(DRY_RUN_ENV, JAX_COMPILATION_CACHE_DIR=str(log.parent / "jax_cache"))
    env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} {DRY_RUN_XLA_FLAGS}".strip()
  else:
    env.update(part.env)
  start, cpu0 = time.perf_counter(), _children_cpu_s()
  with open(log, "w") as f:
    try:
      proc = subprocess.run(command, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                            timeout=timeout_s, check=False)
      status, rc = ("ok" if proc.returncode == 0 else "failed"), proc.returncode
    except subprocess.TimeoutExpired:
      status, rc = "timeout", None
  lines = log.read_text(errors="replace").splitlines()
  return dict(name=part.name, status=status, returncode=rc,
              seconds=round(time.perf_counter() - start, 1), timeout_s=round(timeout_s),
              cpu_s=round(_children_cpu_s() - cpu0, 1),
              command=" ".join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                               for c in command),
              output_tail=lines[-TAIL_LINES:])


def write_report(out: pathlib.Path, report: dict) -> None:
  """gpu_report.json and gpu_report.md from the results so far."""
  (out / "gpu_report.json").write_text(json.dumps(report, indent=1))
  lines = [f"# GPU suite · {report['started']}" + (" · DRY RUN" if report["dry_run"] else ""),
           "", f"budget {report['budget_s']} s · total {report['total_s']} s", "",
           "| part | status | seconds | CPU s | limit |", "|---|---|---|---|---|"]
  lines += [f"| {r['name']} | {r['status']} | {r['seconds']} | {r.get('cpu_s', '')} | "
            f"{r['timeout_s']} |"
            for r in report["parts"]]
  for r in report["parts"]:
    lines += ["", f"## {r['name']}: {r['status']}", "", f"`{r['command']}`", "", "```",
              *r["output_tail"], "```"]
  (out / "gpu_report.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--out", required=True, help="directory for the report and the part logs")
  p.add_argument("--budget_s", type=float, default=480,
                 help="wall-time budget of the whole suite in seconds (480)")
  p.add_argument("--dry_run", action="store_true",
                 help="CPU, tiny shapes, kernels interpreted: a smoke test of the suite")
  p.add_argument("--only", default=None, help="comma-separated part names to run (default all)")
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  (out / "parts").mkdir(parents=True, exist_ok=True)
  selected = parts(out)
  if args.only:
    names = args.only.split(",")
    unknown = set(names) - {q.name for q in selected}
    if unknown:
      p.error(f"--only: unknown parts {sorted(unknown)}; parts: {[q.name for q in selected]}")
    selected = [q for q in selected if q.name in names]
  report = dict(started=datetime.datetime.now(datetime.timezone.utc).isoformat("T", "seconds"),
                dry_run=args.dry_run, budget_s=args.budget_s, total_s=0.0, parts=[])
  start = time.perf_counter()
  for part in selected:
    left = args.budget_s - (time.perf_counter() - start)
    if left < 5:
      result = dict(name=part.name, status="skipped", returncode=None, seconds=0.0,
                    timeout_s=0, command="", output_tail=["no budget left"])
    else:
      timeout = left if args.dry_run else min(part.cap_s, left)
      result = run_part(part, timeout, out / "parts" / f"{part.name}.log", args.dry_run)
    report["parts"].append(result)
    report["total_s"] = round(time.perf_counter() - start, 1)
    write_report(out, report)
    print(f"[gpu_suite] {part.name}: {result['status']} in {result['seconds']} s", flush=True)
  failed = [r["name"] for r in report["parts"] if r["status"] != "ok"]
  print(f"[gpu_suite] report: {out / 'gpu_report.md'}; not ok: {failed or 'none'}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
