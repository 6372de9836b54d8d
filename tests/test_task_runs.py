"""Synthetic tasks through the real entry point: configs/formal.py, model families, make_task."""

import json
import subprocess
import sys

import pytest

from test_train_entry import ROOT, env, metrics, train
from xlstm_jax import presets
from xlstm_jax.nn import ModelConfig
from xlstm_jax.tasks import FORMAL_TASKS, TaskSource, make_task
from xlstm_jax.training.data import sources


def _config(name, arg):
  import importlib.util  # noqa: PLC0415
  spec = importlib.util.spec_from_file_location(f"{name}_config", ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _formal_config(arg):
  return _config("formal", arg)


def test_model_families():
  blocks = {}
  for family in presets.SYNTHETIC_FAMILIES:
    cfg = ModelConfig.from_dict(presets.synthetic_model_dict(family, vocab_size=11))
    blocks[family] = (cfg.arch, cfg.block_types, cfg.slstm_cell)
  assert blocks == {"slstm": ("xlstm", ("slstm", "slstm"), "slstm"),
                    "mlstm": ("xlstm", ("mlstm", "mlstm"), "slstm"),
                    "xlstm11": ("xlstm", ("mlstm", "slstm"), "slstm"),
                    "llama": ("llama", ("llama", "llama"), "slstm"),
                    "lstm": ("xlstm", ("slstm", "slstm"), "lstm")}
  with pytest.raises(ValueError, match="model family 'gru'"):
    presets.synthetic_model_dict("gru", 11)


def test_formal_config_options_and_errors():
  c = _formal_config("task=repetition,model=lstm")
  assert c.data.task == "repetition" and c.model.slstm_cell == "lstm"
  assert c.model.vocab_size == FORMAL_TASKS["repetition"].vocab_size
  assert c.seq_len == 120  # 40 symbols, SEP, 79 BLANKs: 120 tokens (a multiple of 8)
  assert _formal_config("task=parity").seq_len == 48
  with pytest.raises(ValueError, match="not a formal task"):
    _formal_config("task=nope")
  with pytest.raises(ValueError, match="'size=3' is not key=value with key in"):
    _formal_config("size=3")
  with pytest.raises(ValueError, match="unknown task 'nope'; known tasks"):
    make_task("nope")
  with pytest.raises(ValueError, match="takes no parameters"):
    make_task("parity", num_pairs=3)


def test_recall_configs_build_their_tasks():
  c = _config("mqar", "model=lstm,context=48,pairs=4")
  assert (c.data.task, c.model.slstm_cell, c.seq_len) == ("mqar", "lstm", 48)
  assert dict(c.data.task_kwargs) == {"num_pairs": 4, "num_keys": 64, "num_values": 64}
  assert tuple(c.data.train_lengths) == tuple(c.data.test_lengths) == (48, 48)
  train_src, val_src = sources(c, tokenizer=None)
  ex = train_src[0]
  assert ex["inputs"].shape == (48,) and ex["mask"].sum() == 4   # every key queried once
  assert c.model.vocab_size == make_task("mqar", **c.data.task_kwargs).vocab_size
  r = _config("revision", "model=slstm,igate=sigmoid")
  assert (r.data.task, r.model.igate, r.seq_len) == ("revision", "sigmoid", 72)  # 2*32+1 -> 72
  assert sources(r, tokenizer=None)[1][0]["mask"].sum() == 1   # scored only at QUERY
  with pytest.raises(ValueError, match="igate='tanh' must be exp or sigmoid"):
    _config("revision", "igate=tanh")
  with pytest.raises(ValueError, match="model=lstm has a sigmoid input gate only .got igate='exp'"):
    _config("revision", "model=lstm,igate=exp")
  with pytest.raises(ValueError, match="context='long' is not a int"):
    _config("mqar", "context=long")
  with pytest.raises(ValueError, match="MQAR length=8 too short"):
    sources(_config("mqar", "context=8,pairs=4"), tokenizer=None)


def test_mqar_conv_option_sets_each_family_short_conv():
  llama = ModelConfig.from_dict(_config("mqar", "model=llama").model)
  assert llama.attn_conv_kernel_size == 4            # Zoology-style conv before q and k
  assert ModelConfig.from_dict(_config("mqar", "model=llama,conv=0").model
                               ).attn_conv_kernel_size == 0   # the plain Transformer
  x = ModelConfig.from_dict(_config("mqar", "model=xlstm11,conv=2").model)
  assert (x.conv_kernel_size, x.slstm_conv_kernel_size) == (2, 2)
  with pytest.raises(ValueError, match="conv=-1 must be >= 0"):
    _config("mqar", "conv=-1")


def test_options_parse_bools_strictly():
  from configs.synthetic import parse_options  # noqa: PLC0415
  defaults = {"mix": True, "n": 3}
  assert parse_options("mix=False,n=5", defaults) == {"mix": False, "n": 5}
  assert parse_options("mix=true", {"mix": False}) == {"mix": True}
  with pytest.raises(ValueError, match="config option mix='no' is not a bool"):
    parse_options("mix=no", defaults)


def test_length_curriculum_ramps_the_longest_size():
  task = FORMAL_TASKS["parity"]
  src = TaskSource(task, num_examples=1000, lengths=(3, 40), seq_len=48, curriculum=0.5)
  sizes = [int(src[i]["mask"].argmax()) for i in range(1000)]   # SEP sits after the input
  assert max(sizes[:50]) <= 3 + round(37 * 50 / 500) and min(sizes) >= 3
  assert max(sizes[500:]) == 40 and max(sizes[:250]) <= 3 + round(37 * 250 / 500)
  assert [int(src[i]["mask"].argmax()) for i in range(1000)] == sizes   # seeded per index
  plain = TaskSource(task, num_examples=1000, lengths=(3, 40), seq_len=48)
  assert max(int(plain[i]["mask"].argmax()) for i in range(50)) > 20
  with pytest.raises(ValueError, match="curriculum=1.5 must be a fraction"):
    TaskSource(task, 10, (3, 40), 48, curriculum=1.5)


def test_formal_task_pulse(tmp_path):
  result = train(tmp_path, "--config.num_steps=3", "--config.eval_every=3",
                 "--config.checkpoint_every=3", "--config.data.test_lengths=(40, 44)",
                 "--config.data.test_examples=8", config="formal.py:task=parity,model=xlstm11")
  logged = metrics(tmp_path)
  assert sorted(logged) == [1, 2, 3] and all(0 <= e["accuracy"] <= 1 for e in logged.values())
  evals = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
           if "eval_accuracy" in l]
  assert len(evals) == 1 and 0 <= evals[0]["eval_accuracy"] <= 1
  assert json.loads((tmp_path / "config.json").read_text())["data"]["task"] == "parity"
  assert result.returncode == 0
  evaluated = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={tmp_path}",
                              "--plot"], capture_output=True, text=True, env=env(), timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  written = json.loads((tmp_path / "eval.json").read_text())
  assert written["task"] == "parity" and written["step"] == 3
  assert sorted(written["per_length"]) == [str(n) for n in range(40, 45)]
  mean = sum(r["scaled_accuracy"] for r in written["per_length"].values()) / 5
  assert written["scaled_accuracy"] == pytest.approx(mean)
  assert f"scaled accuracy {written['scaled_accuracy']:.3f}" in evaluated.stdout
  plot = tmp_path / "length_accuracy.png"
  assert written["plots"] == {"length_accuracy": str(plot)}
  assert plot.read_bytes()[:4] == b"\x89PNG"
