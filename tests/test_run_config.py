"""The typed run config: built from the config files, round trips, and refuses bad fields."""

import dataclasses
import importlib.util
import json
import pathlib

import pytest

from xlstm_jax.nn import ModelConfig
from xlstm_jax.training.config import DataConfig, MeshConfig, RunConfig, run_config
from xlstm_jax.training.data import split_seed
from xlstm_jax.training.optimizer import OptimizerConfig

ROOT = pathlib.Path(__file__).parents[1]


def config_file(name, arg=None):
  """The ConfigDict of configs/`name`.py (as train.py loads it)."""
  spec = importlib.util.spec_from_file_location(f"{name}_cfg", ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_default_config_becomes_typed_fields():
  c = config_file("default")
  run = run_config(c)
  assert isinstance(run.model, ModelConfig) and isinstance(run.optimizer, OptimizerConfig)
  assert isinstance(run.data, DataConfig) and isinstance(run.mesh, MeshConfig)
  assert run.num_steps == c.num_steps == run.optimizer.num_steps  # the schedule spans the run
  assert run.optimizer.learning_rate == c.optimizer.learning_rate
  assert run.model.vocab_size == 257 and run.model.padded_vocab_size == 320
  assert run.data.corpus == c.data.corpus and run.data.task == ""  # a text run
  assert (run.mesh.data, run.mesh.fsdp, run.mesh.tensor) == (c.mesh.data, c.mesh.fsdp,
                                                            c.mesh.tensor)
  assert run_config(run) is run  # built once: a RunConfig passes through


@pytest.mark.parametrize("name, arg", [("default", None), ("formal", "task=parity"),
                                       ("mqar", "model=lstm"), ("revision", None)])
def test_config_files_round_trip_through_json(name, arg):
  """config.json (to_dict) reads back to the same typed config: tuples stay tuples."""
  run = run_config(config_file(name, arg))
  again = RunConfig.from_dict(json.loads(json.dumps(run.to_dict())))
  assert again == run
  assert "num_steps" not in run.to_dict()["optimizer"]  # the config file's layout
  if run.data.task:
    assert isinstance(again.data.train_lengths, tuple) and len(again.data.train_lengths) == 2


def test_configs_are_frozen():
  run = run_config(config_file("default"))
  with pytest.raises(dataclasses.FrozenInstanceError):
    run.num_steps = 5
  with pytest.raises(dataclasses.FrozenInstanceError):
    run.data.corpus = "x"
  short = run.replace(num_steps=70)
  assert short.num_steps == short.optimizer.num_steps == 70 and run.num_steps == 300


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(nope=1), r"unknown config field\(s\) \['nope'\]"),
    (lambda d: d["data"].update(corpos="x"), r"unknown config field\(s\) \['data.corpos'\]"),
    (lambda d: d["mesh"].update(model=2), r"\['mesh.model'\]"),
    (lambda d: d["optimizer"].update(lr=1.0), r"\['optimizer.lr'\]"),
    (lambda d: d["model"].update(heads=2), r"unknown model config keys \['heads'\]"),
    (lambda d: d["optimizer"].update(num_steps=5), "optimizer.num_steps is not a field"),
    (lambda d: d.update(num_steps="10"), r"config.num_steps='10' must be of type int"),
    (lambda d: d.update(seed=1.5), r"config.seed=1.5 must be of type int"),
    (lambda d: d["data"].update(train_lengths=[1, 2, 3]),
     r"data.train_lengths=\[1, 2, 3\] must be of type tuple\[int, int\] \| None"),
    (lambda d: d.update(num_steps=0), "num_steps=0 must be >= 1"),
    (lambda d: d.update(log_every=0), "log_every=0 must be >= 1"),
    (lambda d: d.update(eval_every=-1), "eval_every=-1 must be >= 0"),
    (lambda d: d["mesh"].update(tensor=0), r"mesh.tensor=0 must be >= 1 \(or -1"),
    (lambda d: d.update(data=3), "config field 'data' must be a group of fields"),
    (lambda d: d.update(early_stop_evals=-1), r"early_stop_evals=-1 must be >= 0"),
    (lambda d: d.update(early_stop_accuracy=1.5), r"early_stop_accuracy=1.5 in \[0, 1\]"),
    (lambda d: d.update(stop_at_step=-2), "stop_at_step=-2 must be >= 0"),
])
def test_bad_fields_are_named(edit, message):
  d = config_file("default").to_dict()
  edit(d)
  with pytest.raises(ValueError, match=message):
    RunConfig.from_dict(d)


def test_missing_fields_take_their_defaults():
  """config.json of a run from before a field existed still loads (split_seed: the seed)."""
  d = config_file("default").to_dict()
  del d["data"]["split_seed"], d["peak_tflops_per_device"]
  d["seed"] = 4
  run = RunConfig.from_dict(d)
  assert run.data.split_seed is None and split_seed(run) == 4
  assert run.peak_tflops_per_device == 0.0
  assert split_seed(run.replace(data=dataclasses.replace(run.data, split_seed=9))) == 9


def test_ints_are_floats_and_direct_construction_checks_num_steps():
  run = RunConfig(peak_tflops_per_device=1)
  assert isinstance(run.peak_tflops_per_device, float)
  with pytest.raises(ValueError, match="optimizer.num_steps=1000 differs from the run's "
                     "num_steps=300"):
    RunConfig(optimizer=OptimizerConfig())


def test_optimizer_fields_are_typed_too():
  d = config_file("default").to_dict()
  d["optimizer"]["warmup_steps"] = "3"
  with pytest.raises(ValueError, match="optimizer.warmup_steps='3' must be of type int"):
    RunConfig.from_dict(d)
  d["optimizer"].update(warmup_steps=3, grad_clip=None, learning_rate=1)
  run = RunConfig.from_dict(d)
  assert run.optimizer.grad_clip is None and isinstance(run.optimizer.learning_rate, float)
