"""Released or trained weights in one call: a transformers xLSTM directory or a train.py workdir.

  pre = load_pretrained("runs/default")        # a workdir: its config.json + newest checkpoint
  pre = load_pretrained("xLSTM-7b/")           # a save_pretrained directory (config.json with
                                               # model_type "xlstm", *.safetensors)
  pre.model, pre.params, pre.tokenizer, pre.eos_ids, pre.pad_id
Used by `python -m xlstm_jax.generate`, the lm-evaluation-harness adapter and
`--config.init_from`. The tokenizer is the one that came with the weights: the workdir's
data.tokenizer, or the directory's tokenizer.json (byte-level BPE); `tokenizer=` (a
load_tokenizer spec: "byte" or a tokenizer.json path) supplies one where none came. The EOS id
comes from the HF directory's generation_config.json / config.json, or the tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import ml_collections

from xlstm_jax import convert
from xlstm_jax.data import load_tokenizer


@dataclasses.dataclass
class Pretrained:
  """A loaded model with what came with it."""
  model: Any                    # the LanguageModel (its .cfg is the ModelConfig)
  params: Any                   # its parameters (host or device arrays)
  tokenizer: Any | None         # encode/decode/eos_id/vocab_size, or None (none came with it)
  eos_ids: tuple[int, ...]      # ids that end a sequence (empty: none known)
  pad_id: int | None            # what generation pads with (None: generate's default)
  kind: str                     # "hf" or "workdir"
  path: pathlib.Path
  run_config: Any = None        # the workdir's train config (ConfigDict), None for HF dirs
  step: int | None = None       # the workdir checkpoint's step


def source_kind(path) -> str:
  """"hf" for a save_pretrained xLSTM directory, "workdir" for a train.py run; else an error."""
  path = pathlib.Path(path)
  cfg_path = path / "config.json"
  if not cfg_path.is_file():
    raise ValueError(f"{path} has no config.json: expected a train.py workdir or a Hugging "
                     "Face xLSTM directory (save_pretrained)")
  cfg = json.loads(cfg_path.read_text())
  if cfg.get("model_type") == "xlstm":
    return "hf"
  if "model" in cfg and (path / "checkpoints").is_dir():
    return "workdir"
  raise ValueError(f"{cfg_path} is neither a transformers xLSTM config (model_type="
                   f"{cfg.get('model_type')!r}) nor a train.py workdir with checkpoints/")


def hf_special_ids(path) -> tuple[tuple[int, ...], int | None]:
  """(eos ids, pad id) of an HF directory: generation_config.json first, then config.json."""
  path = pathlib.Path(path)
  eos, pad = None, None
  for name in ("config.json", "generation_config.json"):  # the later file wins
    f = path / name
    if f.is_file():
      d = json.loads(f.read_text())
      eos = d["eos_token_id"] if d.get("eos_token_id") is not None else eos
      pad = d["pad_token_id"] if d.get("pad_token_id") is not None else pad
  eos_ids = () if eos is None else tuple(int(e) for e in (eos if isinstance(eos, list) else [eos]))
  return eos_ids, None if pad is None else int(pad)


def load_pretrained(path, tokenizer: str | None = None, **overrides) -> Pretrained:
  """The model, parameters, tokenizer and special ids of an HF xLSTM directory or a workdir.

  `overrides` set execution fields of the ModelConfig (backend, chunk_size, dtype, ...).
  `tokenizer` (a load_tokenizer spec) is used where the weights came without one; given for
  weights that came with one, it must be the same spec (workdir) or is an error (HF dir).
  """
  path = pathlib.Path(path)
  kind = source_kind(path)
  if kind == "hf":
    model, params = convert.load_hf(path, **overrides)
    eos_ids, pad_id = hf_special_ids(path)
    tok_file = path / "tokenizer.json"
    if tok_file.is_file() and tokenizer is not None:
      raise ValueError(f"tokenizer={tokenizer!r}, but {path} came with its own tokenizer.json")
    tok = (load_tokenizer(str(tok_file)) if tok_file.is_file()
           else load_tokenizer(tokenizer) if tokenizer is not None else None)
    if tok is not None and not eos_ids:
      eos_ids = (tok.eos_id,)
    _check_vocab(tok, model.cfg.vocab_size, path)
    return Pretrained(model, params, tok, eos_ids, pad_id, kind, path)
  from xlstm_jax.training.restore import restore_model  # noqa: PLC0415 (workdirs only)
  config = ml_collections.ConfigDict(json.loads((path / "config.json").read_text()))
  if tokenizer is not None and tokenizer != config.data.get("tokenizer"):
    raise ValueError(f"tokenizer={tokenizer!r} contradicts the run's data.tokenizer="
                     f"{config.data.get('tokenizer')!r} in {path / 'config.json'}")
  for key, value in overrides.items():
    config.model[key] = value
  model, params, step = restore_model(config, path)
  tok = None if config.data.get("task") else load_tokenizer(config.data.tokenizer)
  eos_ids = () if tok is None else (tok.eos_id,)
  _check_vocab(tok, model.cfg.vocab_size, path)
  return Pretrained(model, params, tok, eos_ids, None, kind, path, config, step)


def _check_vocab(tok, vocab_size: int, path) -> None:
  if tok is not None and tok.vocab_size > vocab_size:
    raise ValueError(f"the tokenizer's vocab_size={tok.vocab_size} exceeds the model's "
                     f"vocab_size={vocab_size} ({path}): its ids would not fit")
