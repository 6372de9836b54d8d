"""The sweep runner: expansion and names, skipping finished runs, resuming interrupted ones,
results.jsonl, the Slurm array script; and the sweep files in configs/sweeps/."""

import json
import shutil

import pytest

from test_train_entry import ROOT, checkpoint_steps
from xlstm_jax import presets
from xlstm_jax.counting import count_params, train_flops_per_token
from xlstm_jax.scaling import sweep as sw

TINY = """
def get_sweep():
  common = {"num_steps": 4, "batch_size": 8, "seq_len": 32, "eval_every": 0,
            "checkpoint_every": 2, "log_every": 1, "optimizer.warmup_steps": 1,
            "model.num_blocks": 2}
  return {"config": "configs/default.py", "name_keys": ["model.embedding_dim"],
          "runs": [{"model.embedding_dim": 32, **common},
                   {"config": "configs/default.py:llama_tiny", "model.embedding_dim": 32,
                    "budget": 1e9, **common}]}
"""


def test_grid_names_and_errors(tmp_path):
  assert sw.grid(a=[1, 2], b=["x"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
  assert sw.run_name({"model.embedding_dim": 64, "model.slstm_at": (0, 2)},
                     "configs/default.py:llama_tiny") == "llama_tiny__embedding_dim=64__slstm_at=0-2"
  assert sw.run_name({"model.slstm_at": ()}) == "slstm_at=none" and sw.run_name({}) == "base"
  assert sw._flag("model.slstm_at", (1,)) == "--config.model.slstm_at=(1,)"
  bad = tmp_path / "dup.py"
  bad.write_text("def get_sweep():\n  return {'config': 'c', 'runs': [{'a': 1}, {'a': 1}]}\n")
  with pytest.raises(ValueError, match=r"runs \['a=1'\] appear more than once"):
    sw.load_sweep(bad)
  bad.write_text("def get_sweep():\n  return {'runs': []}\n")
  with pytest.raises(ValueError, match="must return"):
    sw.load_sweep(bad)
  with pytest.raises(ValueError, match="does not exist"):
    sw.load_sweep(tmp_path / "nope.py")


def test_runs_skips_finished_and_resumes_interrupted(tmp_path, capsys):
  sweep_file = tmp_path / "tiny.py"
  sweep_file.write_text(TINY)
  root = tmp_path / "runs"
  sw.main([str(sweep_file), f"--root={root}"])
  out = capsys.readouterr().out
  assert "[1/2] embedding_dim=32: loss" in out and "[2/2] llama_tiny__embedding_dim=32: loss" in out
  rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
  assert [r["name"] for r in rows] == ["embedding_dim=32", "llama_tiny__embedding_dim=32"]
  xl, ll = rows
  assert xl["model"]["arch"] == "xlstm" and ll["model"]["arch"] == "llama"
  assert xl["tokens"] == 4 * 8 * 32 and xl["overrides"]["model.embedding_dim"] == 32
  cfg = presets.model_config("xlstm_tiny", vocab_size=257, vocab_pad_multiple=64,
                             embedding_dim=32, num_blocks=2)  # configs/default.py's model
  assert xl["params"] == count_params(cfg)
  assert xl["flops_6n"] == train_flops_per_token(cfg, 32) * xl["tokens"]
  assert xl["flops"] > 0 and xl["loss"] > 0 and xl["step"] == 4
  assert "budget" not in xl and ll["budget"] == 1e9 and "budget" not in ll["overrides"]
  # again: nothing to do
  sw.main([str(sweep_file), f"--root={root}"])
  assert capsys.readouterr().out.count("done before") == 2
  # interrupted: the run lost its last checkpoint and results; it resumes from step 2
  run_dir = root / "embedding_dim=32"
  shutil.rmtree(run_dir / "checkpoints" / "4")
  for name in ("result.json", "eval.json"):
    (run_dir / name).unlink()
  sw.main([str(sweep_file), f"--root={root}", "--index=0"])
  assert "[1/1] embedding_dim=32: loss" in capsys.readouterr().out
  assert checkpoint_steps(run_dir) == [2, 4]
  assert "resumed from step 2" in (run_dir / "run.log").read_text()
  again = json.loads((run_dir / "result.json").read_text())
  assert again["loss"] == pytest.approx(xl["loss"], rel=1e-5)   # same data, same steps
  assert len((root / "results.jsonl").read_text().splitlines()) == 2


def test_list_and_slurm(tmp_path, capsys):
  sweep_file = tmp_path / "tiny.py"
  sweep_file.write_text(TINY)
  sw.main([str(sweep_file), f"--root={tmp_path / 'r'}", "--list"])
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 2 and lines[1].endswith("--index=1   # llama_tiny__embedding_dim=32")
  sw.main([str(sweep_file), f"--root={tmp_path / 'r'}", "--list", "--eval_batches=3"])
  lines = capsys.readouterr().out.splitlines()
  assert f" {sweep_file.resolve()} " in lines[0] and "--index=0 --eval_batches=3   #" in lines[0]
  sw.main([str(sweep_file), f"--root={tmp_path / 'r'}", "--slurm"])
  script = (tmp_path / "r" / "sweep.sbatch").read_text()
  assert "#SBATCH --array=0-1" in script and "--index=$SLURM_ARRAY_TASK_ID" in script
  with pytest.raises(ValueError, match="--index=5 is outside the sweep's 2 runs"):
    sw.run_one(sw.load_sweep(sweep_file), 5, tmp_path)


def test_failed_runs_are_named_and_exit_nonzero(tmp_path, capsys):
  sweep_file = tmp_path / "bad.py"
  sweep_file.write_text("def get_sweep():\n  return {'config': 'configs/default.py', "
                        "'name_keys': ['model.igate'], "
                        "'runs': [{'model.igate': 'tanh', 'num_steps': 1}]}\n")
  with pytest.raises(SystemExit, match=r"1 of 1 runs failed \(see their run.log\): igate=tanh"):
    sw.main([str(sweep_file), f"--root={tmp_path / 'r'}"])
  assert "igate=tanh: xlstm_jax.train failed, see" in capsys.readouterr().out
  assert (tmp_path / "r" / "results.jsonl").read_text() == ""
  assert "igate='tanh'" in (tmp_path / "r" / "igate=tanh" / "run.log").read_text()


def test_sweep_files():
  ladder = sw.load_sweep(ROOT / "configs" / "sweeps" / "ladder.py")
  assert len(ladder["runs"]) == 30
  from configs.sweeps import ladder as ladder_module  # noqa: PLC0415
  for run in ladder["runs"][:5]:      # xLSTM at the smallest budget: 6 N' x tokens ~ budget
    o = run["overrides"]
    assert run["budget"] == ladder_module.BUDGETS[0]
    cfg = presets.model_config("xlstm10_tiny", vocab_size=257,
                               embedding_dim=o["model.embedding_dim"],
                               num_blocks=o["model.num_blocks"])
    spent = train_flops_per_token(cfg, 64) * o["num_steps"] * 16 * 64
    assert spent == pytest.approx(ladder_module.BUDGETS[0], rel=0.02)
  with pytest.raises(ValueError, match="budget 1e.08 buys 0 steps .* at least 20"):
    ladder_module.planned_steps("xlstm10_tiny", 96, 4, 1e8)
  ablations = sw.load_sweep(ROOT / "configs" / "sweeps" / "ablations.py")
  names = [r["name"] for r in ablations["runs"]]
  assert names[0] == "base" and "igate=sigmoid" in names and "slstm_at=none" in names
  assert len(set(names)) == len(names) == 9
  gating = sw.load_sweep(ROOT / "configs" / "sweeps" / "gating.py")
  gating_names = [r["name"] for r in gating["runs"]]
  assert len(set(gating_names)) == len(gating_names) == 14   # 7 rows x 2 seeds
  assert gating_names[0] == "igate_mode=fixed__fgate_mode=fixed__seed=0"
  assert gating_names[-1] == "igate_mode=learned__fgate_mode=learned__seed=1"
  for sweep in (ladder, ablations, gating):   # every run builds a valid model
    for run in sweep["runs"]:
      preset = run.get("config", sweep["config"]).split(":")[1]
      model = {k.removeprefix("model."): v for k, v in run["overrides"].items()
               if k.startswith("model.")}
      presets.model_config(preset, **model)
