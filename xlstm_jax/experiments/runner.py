"""The one experiment runner: a run is `python -m xlstm_jax.train` (resuming if its workdir
has checkpoints) followed by `python -m xlstm_jax.eval`, both the installed entry points, so
it works from an installed package as well as from a checkout. Config paths are taken as
given (relative ones from the current directory). Runs go here, `jobs` at a time
(`run_jobs`), or on a Slurm cluster as an array job whose task i runs run i
(`slurm_array_script`).

  error = train_and_eval(workdir, "configs/default.py:xlstm_tiny", ["--config.num_steps=10"])
  for item, status in run_jobs(items, run_one, jobs=2): print(status)
  script = slurm_array_script("sweep-ladder", n, root, "python -m xlstm_jax.scaling.sweep ...")
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence


def entry_point_command(module: str, *args: str) -> list[str]:
  """[python, "-m", module, *args] with this interpreter (module: "xlstm_jax.train" or
  "xlstm_jax.eval")."""
  return [sys.executable, "-m", module, *args]


def train_and_eval(workdir, config: str, train_flags: Sequence[str] = (),
                   eval_flags: Sequence[str] = ()) -> str | None:
  """Trains (or resumes) `config` in `workdir`, then evaluates it, appending both commands'
  output to WORKDIR/run.log; None on success, else which step failed and where its log is."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / "run.log", "a") as log:
    for module, args in (("xlstm_jax.train", [f"--config={config}", f"--workdir={workdir}",
                                              *train_flags]),
                         ("xlstm_jax.eval", [f"--workdir={workdir}", *eval_flags])):
      cmd = entry_point_command(module, *args)
      log.write(f"$ {' '.join(cmd)}\n")
      log.flush()
      if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode:
        return f"{module} failed, see {workdir / 'run.log'}"
  return None


def run_jobs(items: Iterable, run: Callable[[object], str],
             jobs: int = 1) -> Iterator[tuple[object, str]]:
  """Calls run(item) for every item, `jobs` at a time (threads: each run is a subprocess),
  yielding (item, its status line) as each ends (in order when jobs is 1)."""
  if jobs < 1:
    raise ValueError(f"jobs={jobs} must be >= 1")
  items = list(items)
  if jobs == 1:
    for item in items:
      yield item, run(item)
    return
  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    futures = {pool.submit(run, item): item for item in items}
    for fut in concurrent.futures.as_completed(futures):
      yield futures[fut], fut.result()


def slurm_array_script(job_name: str, num_tasks: int, log_dir, command: str,
                       workdir=None) -> str:
  """An sbatch script of an array job of `num_tasks` tasks, each running `command` (which
  may use $SLURM_ARRAY_TASK_ID) from `workdir` (default: the current directory, so that
  relative config paths resolve as they did here). Resources are left to the cluster."""
  if num_tasks < 1:
    raise ValueError(f"num_tasks={num_tasks} must be >= 1")
  return "\n".join([
      "#!/bin/bash",
      f"#SBATCH --job-name={job_name}",
      f"#SBATCH --array=0-{num_tasks - 1}",
      f"#SBATCH --output={log_dir}/slurm-%A_%a.out",
      "# add your partition, GPUs and time limit here",
      f"cd {pathlib.Path(workdir or os.getcwd()).resolve()}",
      command, ""])
