"""Fine-tuning from released weights: `--config.init_from=hf:DIR` or `workdir:DIR`.

  python train.py --config=configs/default.py --workdir=runs/ft --config.init_from=hf:xLSTM-7b/
  python train.py --config=configs/default.py --workdir=runs/ft2 --config.init_from=workdir:runs/a

`resolve_config` (before any compute) replaces config.model with the checkpoint's architecture
and sizes (an HF directory's config.json, or the workdir's config.json) and uses the
tokenizer that came with the weights (the directory's tokenizer.json, or the workdir's
data.tokenizer). Execution fields (EXECUTION_FIELDS: backend, chunk_size, dtype, remat and,
from HF directories, scan_blocks) keep the run's values. An explicit override (train.py's
`--config.model.X=...`) that contradicts the checkpoint is an error naming the field; so is
an explicit data.tokenizer other than the one that came with the weights, and data whose ids
do not fit the checkpoint's vocabulary. `load_params` then puts the checkpoint's parameters
into the freshly initialised train state, resharded onto the run's mesh; a resumed run keeps
its own checkpoint and never reloads them.
"""

from __future__ import annotations

import json
import logging
import pathlib

import jax
import ml_collections

from xlstm_jax import convert
from xlstm_jax.convert.hf import config_from_hf
from xlstm_jax.data import load_tokenizer
from xlstm_jax.nn import ModelConfig
from xlstm_jax.training.data import task_of, vocab_size

EXECUTION_FIELDS = ("backend", "chunk_size", "dtype", "remat", "scan_blocks")
_WORKDIR_FIXED = ("scan_blocks",)  # a workdir checkpoint's parameter layout is its own


def parse_init_from(spec: str) -> tuple[str, pathlib.Path]:
  """("hf" | "workdir", path) of an init_from value; a clear error for anything else."""
  kind, sep, path = spec.partition(":")
  if not sep or kind not in ("hf", "workdir") or not path:
    raise ValueError(f"init_from={spec!r} must be 'hf:DIR' (a Hugging Face xLSTM directory) or "
                     "'workdir:DIR' (a train.py run)")
  path = pathlib.Path(path)
  if not (path / "config.json").is_file():
    raise ValueError(f"init_from={spec!r}: {path / 'config.json'} does not exist")
  if kind == "workdir" and not (path / "checkpoints").is_dir():
    raise ValueError(f"init_from={spec!r}: {path} has no checkpoints/ directory")
  return kind, path


def _source_model(kind: str, path: pathlib.Path, run_model) -> tuple[ModelConfig, set, dict]:
  """(the checkpoint's ModelConfig with the run's execution fields, the fields that are the
  checkpoint's own, the source workdir's config dict or {})."""
  execution = {k: run_model[k] for k in EXECUTION_FIELDS if k in run_model}
  if kind == "hf":
    cfg = config_from_hf(json.loads((path / "config.json").read_text()), **execution)
    return cfg, set(vars(cfg)) - set(execution), {}
  source = json.loads((path / "config.json").read_text())
  for k in _WORKDIR_FIXED:
    execution.pop(k, None)
  cfg = ModelConfig.from_dict({**source["model"], **execution})
  return cfg, set(vars(cfg)) - set(execution), source


def _source_tokenizer(kind: str, path: pathlib.Path, source: dict) -> str | None:
  """The load_tokenizer spec that came with the weights, or None."""
  if kind == "hf":
    tok = path / "tokenizer.json"
    return str(tok) if tok.is_file() else None
  return (source.get("data") or {}).get("tokenizer")


def resolve_config(config, overrides: dict | None = None):
  """The run config with the checkpoint's model (a copy; `config` itself is unchanged when
  init_from is empty or absent). `overrides`: the explicit `--config.*` overrides of the
  command line ({"model.num_blocks": 3, ...}); None when unknown (a config built in Python)."""
  spec = getattr(config, "init_from", "") or ""
  if not spec:
    return config
  kind, path = parse_init_from(spec)
  overrides = dict(overrides or {})
  cfg, owned, source = _source_model(kind, path, config.model)
  theirs = vars(cfg)
  for key, value in sorted(overrides.items()):
    field = key[len("model."):] if key.startswith("model.") else None
    if field in owned and _differs(value, theirs[field]):
      raise ValueError(f"--config.{key}={value!r} contradicts init_from={spec!r}, whose "
                       f"{field} is {theirs[field]!r}; drop the override (the architecture "
                       "comes from the checkpoint)")
  out = ml_collections.ConfigDict(config.to_dict())
  out.model = ml_collections.ConfigDict(
      {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()})
  tokenizer = _source_tokenizer(kind, path, source)
  if tokenizer is not None and not task_of(out):
    explicit = overrides.get("data.tokenizer")
    if explicit is not None and explicit != tokenizer:
      raise ValueError(f"--config.data.tokenizer={explicit!r} contradicts init_from={spec!r}, "
                       f"whose weights came with the tokenizer {tokenizer!r}")
    out.data.tokenizer = tokenizer
  needed = vocab_size(out, None if task_of(out) else load_tokenizer(out.data.tokenizer))
  if needed > cfg.vocab_size:
    what = (f"task {out.data.task!r}" if task_of(out)
            else f"tokenizer {out.data.tokenizer!r}")
    raise ValueError(f"the {what} has token ids up to {needed - 1}, which do not fit the "
                     f"vocab_size={cfg.vocab_size} of init_from={spec!r}")
  changed = sorted(k for k in owned if k in config.model and _differs(config.model[k], theirs[k]))
  if changed:
    logging.info("init_from=%s sets model fields %s from the checkpoint", spec, changed)
  return out


def _differs(a, b) -> bool:
  norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
  return norm(a) != norm(b)


def load_params(config, state):
  """`state` with the init_from checkpoint's parameters (on the state's shardings); `state`
  unchanged when init_from is empty. config is the resolved one (resolve_config)."""
  spec = getattr(config, "init_from", "") or ""
  if not spec:
    return state
  kind, path = parse_init_from(spec)
  execution = {k: getattr(config.model, k) for k in EXECUTION_FIELDS
               if hasattr(config.model, k)}  # a ModelConfig or (in a ConfigDict) a dict
  if kind == "hf":
    _, params = convert.load_hf(path, **execution)
  else:
    from xlstm_jax.training.restore import restore_model  # noqa: PLC0415 (workdirs only)
    source = ml_collections.ConfigDict(json.loads((path / "config.json").read_text()))
    for k, v in execution.items():
      if k not in _WORKDIR_FIXED:
        source.model[k] = v
    _, params, _ = restore_model(source, path)
  ours = jax.tree_util.tree_structure(state.params)
  if jax.tree_util.tree_structure(params) != ours:
    raise ValueError(f"init_from={spec!r}: the checkpoint's parameter tree differs from the "
                     "model's (was config.model changed after resolve_config?)")
  params = jax.tree.map(lambda new, old: jax.device_put(new.astype(old.dtype), old.sharding),
                        params, state.params)
  logging.info("initialised the parameters from %s", spec)
  return state.replace(params=params)
