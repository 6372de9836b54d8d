"""The huge-page re-exec of the entry points (xlstm_jax/hugepages.py): when it applies, that
it sets the glibc tunable once and runs the same command, and that it stays out otherwise."""

import os
import pathlib
import subprocess
import sys

import pytest

from xlstm_jax import hugepages

ROOT = str(pathlib.Path(__file__).resolve().parents[1])
ON = {"GLIBC_TUNABLES": hugepages.TUNABLE}


@pytest.mark.parametrize("environ, glibc, thp, reason", [
    ({}, (2, 36), "madvise", None),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, (2, 36), "madvise", None),
    ({"XLSTM_HUGEPAGES": "0"}, (2, 36), "madvise", "XLSTM_HUGEPAGES=0"),
    (ON, (2, 36), "madvise", "already sets"),
    ({}, (2, 31), "madvise", "glibc >= 2.35"),
    ({}, (2, 36), "always", "'always'"),
    ({}, (2, 36), "never", "'never'"),
])
def test_wanted_says_why_not(environ, glibc, thp, reason):
  got = hugepages.wanted(environ, glibc=glibc, thp_mode=thp)
  assert got is None if reason is None else reason in got


def test_thp_mode_reads_the_bracketed_mode(tmp_path):
  f = tmp_path / "enabled"
  f.write_text("always [madvise] never\n")
  assert hugepages._thp_mode(str(f)) == "madvise"
  assert hugepages._thp_mode(str(tmp_path / "missing")) is None


def test_describe():
  assert hugepages.describe(ON) == "on"
  assert hugepages.describe({"GLIBC_TUNABLES": "a=1:" + hugepages.TUNABLE}) == "on"
  assert hugepages.describe({"XLSTM_HUGEPAGES": "0"}).startswith("off (turned off")


CHILD = ("import os, sys; from xlstm_jax.hugepages import reexec_with_hugepages; "
         "print('start', flush=True); reexec_with_hugepages(); "
         "print('args', sys.argv[1:], 'tunables', os.environ.get('GLIBC_TUNABLES'))")


def run_child(**env_changes) -> list[str]:
  env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XLSTM_HUGEPAGES")}
  env.update(env_changes, PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-c", CHILD, "a", "--b=1"], env=env, check=True,
                       capture_output=True, text=True).stdout
  return out.splitlines()


def test_reexec_runs_the_same_command_once_with_the_tunable():
  lines = run_child()
  # Where the tunable helps (glibc >= 2.35, THP on madvise) the command starts twice, the
  # second time with it set; elsewhere it runs once, untouched.
  applies = hugepages.wanted({}) is None
  assert lines.count("start") == (2 if applies else 1)
  assert lines[-1] == ("args ['a', '--b=1'] tunables "
                       + (hugepages.TUNABLE if applies else "None"))


def test_reexec_keeps_other_tunables_and_can_be_turned_off():
  lines = run_child(GLIBC_TUNABLES="glibc.malloc.arena_max=2")
  applies = hugepages.wanted({}) is None
  assert lines[-1].endswith("glibc.malloc.arena_max=2"
                            + (":" + hugepages.TUNABLE if applies else ""))
  assert run_child(XLSTM_HUGEPAGES="0") == ["start", "args ['a', '--b=1'] tunables None"]


def test_importing_it_loads_no_jax():
  # the entry points call it before jax loads, so the re-exec costs only Python's start
  script = "import sys, xlstm_jax.hugepages; print('jax' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONPATH": ROOT}).stdout
  assert out.strip() == "False"
