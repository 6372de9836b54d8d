"""The run's typed configuration: frozen dataclasses, built once from the ConfigDict.

  run = run_config(config)   # a ConfigDict (train.py), a dict (a run's config.json), a RunConfig
  run.model       nn.ModelConfig      the model boundary
  run.optimizer   OptimizerConfig     AdamW, schedule, clipping, accumulation (num_steps: the run's)
  run.data        DataConfig          corpus and tokenizer, or a synthetic task
  run.mesh        MeshConfig          data x fsdp x tensor
  run.num_steps, run.batch_size, ...  the loop's settings

Field names are the config file's, so `--config.data.corpus=X` is `run.data.corpus`. A field
the dict lacks takes its dataclass default, so the config.json of a run written before a
field existed still loads; a field the dataclasses lack is an error naming it. Values are
checked against the field types (an int is a float too; lists become tuples).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.training.optimizer import OptimizerConfig


@dataclasses.dataclass(frozen=True)
class DataConfig:
  corpus: str = "default"            # "default", a text glob, *.jsonl, or a prepared directory
  tokenizer: str = "byte"            # "byte" or a tokenizer.json
  val_fraction: float = 0.05         # documents held out for validation
  split_seed: int | None = None      # seed of that split; None: the run's seed (older runs)
  task: str = ""                     # a synthetic task (xlstm_jax.tasks); "": the text corpus
  task_kwargs: dict = dataclasses.field(default_factory=dict)  # the task's parameters
  train_lengths: tuple[int, int] | None = None  # task sizes seen in training (inclusive)
  val_lengths: tuple[int, int] | None = None    # task sizes of the periodic validation
  test_lengths: tuple[int, int] | None = None   # eval.py: every task size in this range
  test_examples: int = 32            # eval.py: examples per test size
  curriculum: float = 0.0            # fraction of training that ramps the longest size up

  def __post_init__(self):
    _check_types(self, "data")


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  data: int = -1                     # pure data parallel (-1: the devices left over)
  fsdp: int = 1                      # data parallel with sharded parameters
  tensor: int = 1                    # tensor parallel

  def __post_init__(self):
    _check_types(self, "mesh")
    for name in ("data", "fsdp", "tensor"):
      value = getattr(self, name)
      if value != -1 and value < 1:
        raise ValueError(f"mesh.{name}={value} must be >= 1 (or -1: the devices left over)")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  optimizer: OptimizerConfig = dataclasses.field(
      default_factory=lambda: OptimizerConfig(num_steps=300, warmup_steps=30))
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
  num_steps: int = 300               # optimizer steps (the schedule spans exactly these)
  batch_size: int = 16               # global sequences per micro-batch
  seq_len: int = 128                 # tokens per sequence
  log_every: int = 10                # steps between metrics lines
  eval_every: int = 100              # steps between validation passes (0: never)
  eval_batches: int = 8              # validation batches per pass
  checkpoint_every: int = 100        # steps between checkpoints
  keep_checkpoints: int = 3          # newest checkpoints kept
  seed: int = 0                      # init and data order
  peak_tflops_per_device: float = 0.0  # for MFU; 0: the accelerator's datasheet peak
  init_from: str = ""                # "hf:DIR" / "workdir:DIR": start from those weights
  stop_at_step: int = 0              # > 0: pause there (the schedule still spans num_steps)
  early_stop_accuracy: float = 0.0   # with early_stop_evals > 0: stop once that many
  early_stop_evals: int = 0          # consecutive validations reach this accuracy

  def __post_init__(self):
    _check_types(self, "config")
    for name in ("num_steps", "batch_size", "seq_len", "log_every", "checkpoint_every",
                 "keep_checkpoints"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.early_stop_evals < 0 or not 0.0 <= self.early_stop_accuracy <= 1.0:
      raise ValueError(f"early_stop_evals={self.early_stop_evals} must be >= 0 and "
                       f"early_stop_accuracy={self.early_stop_accuracy} in [0, 1]")
    for name in ("eval_every", "eval_batches", "stop_at_step"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
    if self.optimizer.num_steps != self.num_steps:
      raise ValueError(f"optimizer.num_steps={self.optimizer.num_steps} differs from the run's "
                       f"num_steps={self.num_steps}; build the config with RunConfig.from_dict")

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
    """The typed config of a ConfigDict or (nested) dict; unknown fields are an error."""
    d = _plain(d, "config")
    _refuse_unknown(cls, d, "config", nested=("model", "optimizer", "data", "mesh"))
    top = _typed(cls, {k: v for k, v in d.items()
                       if k not in ("model", "optimizer", "data", "mesh")}, "config")
    num_steps = top.get("num_steps", cls.num_steps)
    opt = _plain(d.get("optimizer", {}), "optimizer")
    if "num_steps" in opt:
      raise ValueError("optimizer.num_steps is not a field: the schedule spans the run's "
                       "num_steps; set --config.num_steps")
    _refuse_unknown(OptimizerConfig, opt, "optimizer")
    data, mesh = _plain(d.get("data", {}), "data"), _plain(d.get("mesh", {}), "mesh")
    _refuse_unknown(DataConfig, data, "data")
    _refuse_unknown(MeshConfig, mesh, "mesh")
    return cls(model=ModelConfig.from_dict(_plain(d.get("model", {}), "model")),
               optimizer=OptimizerConfig(**_typed(OptimizerConfig,
                                                  {**opt, "num_steps": num_steps}, "optimizer")),
               data=DataConfig(**data), mesh=MeshConfig(**mesh), **top)

  def to_dict(self) -> dict:
    """The config file's layout (what from_dict reads back; config.json of a run)."""
    out = dataclasses.asdict(self)
    del out["optimizer"]["num_steps"]
    return out

  def replace(self, **kw) -> "RunConfig":
    """A copy with fields replaced; a new num_steps carries over to the optimizer's."""
    if "num_steps" in kw and "optimizer" not in kw:
      kw["optimizer"] = dataclasses.replace(self.optimizer, num_steps=kw["num_steps"])
    return dataclasses.replace(self, **kw)


def run_config(config) -> RunConfig:
  """`config` as a RunConfig: itself if it is one, else RunConfig.from_dict(config)."""
  return config if isinstance(config, RunConfig) else RunConfig.from_dict(config)


def _plain(d, where: str) -> dict:
  """A ConfigDict or mapping as a plain dict (one level)."""
  if hasattr(d, "to_dict"):
    d = d.to_dict()
  if not isinstance(d, Mapping):
    raise ValueError(f"{where} must be a mapping of fields, got {type(d).__name__}: {d!r}")
  return dict(d)


def _refuse_unknown(cls, d: dict, where: str, nested: tuple[str, ...] = ()) -> None:
  known = {f.name for f in dataclasses.fields(cls)}
  if cls is OptimizerConfig:
    known.discard("num_steps")  # the run's
  unknown = sorted(set(d) - known)
  if unknown:
    prefix = "" if where == "config" else f"{where}."
    raise ValueError(f"unknown config field(s) {[prefix + k for k in unknown]}; the known "
                     f"{where} fields are {sorted(known)}")
  for name in nested:
    if name in d and not (isinstance(d[name], Mapping) or hasattr(d[name], "to_dict")):
      raise ValueError(f"config field {name!r} must be a group of fields, got {d[name]!r}")


def _check_types(obj, where: str) -> None:
  """`_typed` on a dataclass instance's own fields, normalising them in place."""
  values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
  for name, value in _typed(type(obj), values, where).items():
    object.__setattr__(obj, name, value)


def _typed(cls, values: dict, where: str) -> dict:
  """`values` (fields of dataclass `cls`) checked against the annotations and normalised:
  ints are accepted for floats, lists for tuples. Raises ValueError naming the field, the
  value and the type."""
  hints = typing.get_type_hints(cls)
  out = {}
  for name, value in values.items():
    ok, out[name] = _conform(value, hints[name])
    if not ok:
      raise ValueError(f"{where}.{name}={value!r} must be of type {_name(hints[name])}")
  return out


def _conform(value, hint) -> tuple[bool, Any]:
  """(whether value fits the annotation, the value normalised)."""
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin in (typing.Union, types.UnionType):
    if value is None:
      return type(None) in args, None
    return _conform(value, next(a for a in args if a is not type(None)))
  if dataclasses.is_dataclass(hint):
    return isinstance(value, hint), value
  if hint is float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok, float(value) if ok else value
  if hint is int:
    return isinstance(value, int) and not isinstance(value, bool), value
  if hint in (str, bool):
    return isinstance(value, hint), value
  if origin is tuple:  # fixed length, e.g. tuple[int, int]
    if not isinstance(value, (list, tuple)) or len(value) != len(args):
      return False, value
    fits = [_conform(v, a) for v, a in zip(value, args)]
    return all(ok for ok, _ in fits), tuple(v for _, v in fits)
  if hint is dict or origin is dict:
    return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
  raise TypeError(f"no check for the annotation {hint!r}")  # a field type this file lacks


def _name(hint) -> str:
  """int, tuple[int, int] | None, ... as written in the annotation."""
  return hint.__name__ if isinstance(hint, type) else str(hint)
