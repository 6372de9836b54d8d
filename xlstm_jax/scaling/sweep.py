"""Sweeps: a grid of training runs, run here (--jobs at a time) or on a Slurm cluster.

  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder          # run
  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder --jobs=2
  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder --list   # plan
  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder --slurm
  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder --index=3

A sweep file defines `get_sweep()` -> {"config": "configs/<file>[:arg]", "runs": [dict of
overrides, ...]} (see configs/sweeps/); a run's optional "config" key replaces the sweep's
config for that run (e.g. the Llama baseline's preset) and an optional "budget" (the
planned compute of an IsoFLOP set) is copied into its results; an optional "name_keys"
list says which overrides name the runs (default: all). Each run gets its own workdir
ROOT/<name>, the name spelled from its config argument and those overrides, so the same
sweep always maps to the same directories: a run with a result.json is done and skipped,
an interrupted one resumes from its checkpoint, so running the sweep again finishes what
is missing. Each run is `python -m xlstm_jax.train` then `python -m xlstm_jax.eval`
(xlstm_jax.experiments.runner), from the current directory: config paths are relative to
it. `--slurm` writes
ROOT/sweep.sbatch, an array job whose task i runs `--index=i`; `--list` prints one command
per run. Every finished run adds a line to ROOT/results.jsonl (rewritten from the
result.json files): name, overrides, model (arch and block types), params (all and
without the embedding), tokens, flops (counted from the jaxpr, counting/count.py, and the
6 N estimate) and the final validation loss.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import pathlib
import re
import sys
import tempfile

from xlstm_jax.experiments import runner

def grid(**axes) -> list[dict]:
  """Every combination of the axes' values: grid(a=[1, 2], b=[3]) -> [{a:1,b:3}, {a:2,b:3}]."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def run_name(overrides: dict, config: str | None = None) -> str:
  """A directory name spelled from the config's argument (after the colon) and the
  overrides, in their order: ("configs/default.py:llama_tiny", {"model.embedding_dim": 64})
  -> "llama_tiny__embedding_dim=64"; a tuple is spelled 0-1-2 ("none" when empty); other
  characters than letters, digits and ._=- become "-"."""
  def spell(v):
    return "-".join(map(str, v)) or "none" if isinstance(v, (tuple, list)) else str(v)
  parts = [config.partition(":")[2]] if config and ":" in config else []
  parts += [f"{k.split('.')[-1]}={spell(v)}" for k, v in overrides.items()]
  return re.sub(r"[^A-Za-z0-9._=-]", "-", "__".join(parts)) or "base"


def load_sweep(path) -> dict:
  """{"config", "runs": [{"name", "overrides"}]} of a sweep file; ValueError if malformed."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise ValueError(f"sweep file {path} does not exist")
  spec = importlib.util.spec_from_file_location(f"sweep_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = module.get_sweep()
  if not isinstance(sweep, dict) or not {"config", "runs"} <= set(sweep) <= {
      "config", "runs", "name_keys"}:
    raise ValueError(f"{path}: get_sweep() must return {{'config': ..., 'runs': [...]}} "
                     f"(+ optional 'name_keys'), got "
                     f"{type(sweep).__name__} {sorted(sweep) if isinstance(sweep, dict) else ''}")
  runs = []
  for entry in sweep["runs"]:
    overrides = {k: v for k, v in entry.items() if k not in ("config", "budget")}
    named = {k: v for k, v in overrides.items() if k in sweep.get("name_keys", overrides)}
    config = entry.get("config")
    runs.append({"name": run_name(named, config), "overrides": overrides,
                 "config": config or sweep["config"], "budget": entry.get("budget")})
  names = [r["name"] for r in runs]
  if len(set(names)) != len(names):
    dup = sorted({n for n in names if names.count(n) > 1})
    raise ValueError(f"{path}: runs {dup} appear more than once")
  if not runs:
    raise ValueError(f"{path}: the sweep has no runs")
  return {"config": sweep["config"], "runs": runs}


def _flag(key: str, value) -> str:
  if isinstance(value, (tuple, list)):
    value = "(" + ",".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  return f"--config.{key}={value}"


def result_of(workdir: pathlib.Path, name: str, overrides: dict) -> dict:
  """The results.jsonl line of a finished run, from its config.json and eval.json."""
  from xlstm_jax.nn import ModelConfig  # noqa: PLC0415 (listing a sweep needs no jax)
  from xlstm_jax.counting import count_params, train_flops_per_token  # noqa: PLC0415
  from xlstm_jax.counting.count import model_flops  # noqa: PLC0415
  config = json.loads((workdir / "config.json").read_text())
  evaluation = json.loads((workdir / "eval.json").read_text())
  cfg = ModelConfig.from_dict(config["model"])
  seq_len = config["seq_len"]
  tokens = config["num_steps"] * config["batch_size"] * seq_len * config["optimizer"].get(
      "grad_accum_steps", 1)
  params = count_params(cfg)
  return {"name": name, "overrides": overrides,
          "model": {"arch": cfg.arch, "blocks": "".join(t[0] for t in cfg.block_types)},
          "params": params,
          "params_non_embedding": params - cfg.padded_vocab_size * cfg.embedding_dim,
          "tokens": tokens, "flops": model_flops(cfg, seq_len)["total"] * tokens,
          "flops_6n": train_flops_per_token(cfg, seq_len) * tokens,
          "loss": evaluation["eval_loss"], "step": evaluation["step"]}


def run_one(sweep: dict, index: int, root: pathlib.Path, eval_batches: int = 0) -> str:
  """Runs sweep run `index` unless done (`runner.train_and_eval`); a status line."""
  if not 0 <= index < len(sweep["runs"]):
    raise ValueError(f"--index={index} is outside the sweep's {len(sweep['runs'])} runs")
  run = sweep["runs"][index]
  workdir = root / run["name"]
  if (workdir / "result.json").is_file():
    return f"{run['name']}: done before"
  eval_flags = [f"--batches={eval_batches}"] if eval_batches else []
  error = runner.train_and_eval(workdir, run["config"],
                         [_flag(k, v) for k, v in run["overrides"].items()], eval_flags)
  if error:
    return f"{run['name']}: {error}"
  result = result_of(workdir, run["name"], run["overrides"])
  if run["budget"] is not None:
    result["budget"] = run["budget"]
  (workdir / "result.json").write_text(json.dumps(result) + "\n")
  return f"{run['name']}: loss {result['loss']:.4f}, {result['params']:,} params"


def collect(sweep: dict, root: pathlib.Path) -> pathlib.Path:
  """Writes ROOT/results.jsonl from the finished runs' result.json files, in sweep order."""
  lines = [(root / r["name"] / "result.json").read_text().strip() for r in sweep["runs"]
           if (root / r["name"] / "result.json").is_file()]
  path = root / "results.jsonl"
  root.mkdir(parents=True, exist_ok=True)
  # concurrent array tasks, maybe on other nodes: each writes its own file, then replaces
  fd, tmp = tempfile.mkstemp(dir=root, prefix="results.", suffix=".tmp")
  with os.fdopen(fd, "w") as f:
    f.write("".join(line + "\n" for line in lines))
  pathlib.Path(tmp).replace(path)
  return path


def slurm_script(sweep_path, sweep: dict, root: pathlib.Path, eval_batches: int = 0) -> str:
  """An sbatch array script: task i runs sweep run i from the current directory (resources
  are left to the cluster)."""
  extra = f" --eval_batches={eval_batches}" if eval_batches else ""
  return runner.slurm_array_script(
      f"sweep-{pathlib.Path(sweep_path).stem}", len(sweep["runs"]), root,
      f"{sys.executable} -m xlstm_jax.scaling.sweep {pathlib.Path(sweep_path).resolve()} "
      f"--root={root} --index=$SLURM_ARRAY_TASK_ID{extra}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("sweep", help="a sweep file (configs/sweeps/*.py)")
  parser.add_argument("--root", required=True, help="directory holding one workdir per run")
  parser.add_argument("--list", action="store_true", help="print one command per run, run none")
  parser.add_argument("--slurm", action="store_true", help="write ROOT/sweep.sbatch, run none")
  parser.add_argument("--index", type=int, default=None, help="run only this run (0-based)")
  parser.add_argument("--jobs", type=int, default=1, help="runs at the same time (local)")
  parser.add_argument("--eval_batches", type=int, default=0,
                      help="validation batches of the final eval (0: all)")
  args = parser.parse_args(argv)
  if args.jobs < 1:
    parser.error(f"--jobs={args.jobs} must be >= 1")
  try:
    sweep = load_sweep(args.sweep)
  except ValueError as err:
    parser.error(str(err))
  root = pathlib.Path(args.root).resolve()
  runs = sweep["runs"]
  if args.list:
    extra = f" --eval_batches={args.eval_batches}" if args.eval_batches else ""
    for i, r in enumerate(runs):
      print(f"{sys.executable} -m xlstm_jax.scaling.sweep {pathlib.Path(args.sweep).resolve()} "
            f"--root={root} --index={i}{extra}   # {r['name']}")
    return
  if args.slurm:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.sbatch").write_text(slurm_script(args.sweep, sweep, root, args.eval_batches))
    print(f"wrote {root / 'sweep.sbatch'} ({len(runs)} array tasks); submit: sbatch "
          f"{root / 'sweep.sbatch'}")
    return
  indices = range(len(runs)) if args.index is None else [args.index]
  width = int(math.log10(len(runs))) + 1
  failed = []
  ended = runner.run_jobs(indices, lambda i: run_one(sweep, i, root, args.eval_batches),
                          args.jobs)
  for done, (i, status) in enumerate(ended, start=1):
    print(f"[{done:>{width}}/{len(indices)}] {status}", flush=True)
    if not (root / runs[i]["name"] / "result.json").is_file():
      failed.append(runs[i]["name"])
    path = collect(sweep, root)   # after each run, so a stopped sweep leaves what it has
  print(f"wrote {path}")
  if failed:
    sys.exit(f"{len(failed)} of {len(indices)} runs failed (see their run.log): "
             f"{', '.join(failed)}")


if __name__ == "__main__":
  main()
