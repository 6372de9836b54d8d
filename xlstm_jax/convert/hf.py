"""transformers' xLSTMForCausalLM (the xLSTM 7B architecture) <-> this codebase's large model.

  model, params = load_hf(path)          # a directory written by save_pretrained
  save_hf(model, params, path)           # loads back with xLSTMForCausalLM.from_pretrained
Weights are read and written as safetensors with numpy; torch is never imported.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from xlstm_jax.convert import safetensors_io
from xlstm_jax.convert.common import build_params, flatten_params
from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.nn.lm import LanguageModel

_CELL_EPS = 1e-6  # the eps of xlstm_jax.ops.mlstm, fixed

# (ours under stack/block_i, theirs under backbone.blocks.i, transposed?)
_BLOCK = (
    ("norm_mlstm/scale", "norm_mlstm.weight", False),
    ("norm_mlstm/bias", "norm_mlstm.bias", False),
    ("q/kernel", "mlstm_layer.q.weight", True),
    ("k/kernel", "mlstm_layer.k.weight", True),
    ("v/kernel", "mlstm_layer.v.weight", True),
    ("ogate/kernel", "mlstm_layer.ogate_preact.weight", True),
    ("igate/kernel", "mlstm_layer.igate_preact.weight", True),
    ("fgate/kernel", "mlstm_layer.fgate_preact.weight", True),
    ("outnorm/scale", "mlstm_layer.multihead_norm.weight", False),
    ("outnorm/bias", "mlstm_layer.multihead_norm.bias", False),
    ("out_proj/kernel", "mlstm_layer.out_proj.weight", True),
    ("norm_ffn/scale", "norm_ffn.weight", False),
    ("norm_ffn/bias", "norm_ffn.bias", False),
    ("ffn/gate/kernel", "ffn.proj_up_gate.weight", True),
    ("ffn/up/kernel", "ffn.proj_up.weight", True),
    ("ffn/down/kernel", "ffn.proj_down.weight", True),
)
_TOP = (
    ("embedding", "backbone.embeddings.weight", False),
    ("post_norm/scale", "backbone.out_norm.weight", False),
    ("post_norm/bias", "backbone.out_norm.bias", False),
    ("lm_head/kernel", "lm_head.weight", True),
)


def _name_map(num_blocks: int):
  """[(ours, theirs, transposed)], linear biases included (they follow their weights)."""
  pairs = list(_TOP)
  for i in range(num_blocks):
    for ours, theirs, t in _BLOCK:
      pairs.append((f"stack/block_{i}/{ours}", f"backbone.blocks.{i}.{theirs}", t))
  with_bias = []
  for ours, theirs, t in pairs:
    with_bias.append((ours, theirs, t))
    if ours.endswith("/kernel"):
      with_bias.append((ours[:-len("kernel")] + "bias", theirs[:-len("weight")] + "bias", False))
  return with_bias


def config_from_hf(hf: dict, **overrides) -> ModelConfig:
  """ModelConfig of a transformers xLSTMConfig dict (config.json)."""
  if hf.get("model_type") != "xlstm":
    raise ValueError(f"model_type={hf.get('model_type')!r}, expected 'xlstm'")
  if hf.get("weight_mode", "single") not in ("single", "fused"):
    raise ValueError(f"weight_mode={hf['weight_mode']!r} is not 'single' or 'fused'")
  if abs(hf.get("eps", _CELL_EPS) - _CELL_EPS) > 1e-12:
    raise ValueError(f"eps={hf['eps']} is not the mLSTM eps {_CELL_EPS} of this codebase")
  E = hf.get("hidden_size") or hf["embedding_dim"]
  fields = dict(
      arch="large", vocab_size=hf["vocab_size"], embedding_dim=E,
      num_blocks=hf.get("num_blocks") or hf["num_hidden_layers"], num_heads=hf["num_heads"],
      qk_dim_factor=hf["qk_dim_factor"], v_dim_factor=hf["v_dim_factor"],
      ffn_proj_factor=hf["ffn_proj_factor"], ffn_round_to=hf["ffn_round_up_to_multiple_of"],
      ffn_act="silu", norm_eps=hf["norm_eps"], use_bias=hf["use_bias"], igate_bias_init=-10.0,
      gate_soft_cap=hf["gate_soft_cap"], logit_soft_cap=hf["output_logit_soft_cap"],
      tie_embeddings=hf.get("tie_word_embeddings", False),
      add_post_blocks_norm=hf.get("add_out_norm", True))
  return ModelConfig(**{**fields, **overrides})


def _unfuse(tensors: dict, hf: dict, E: int) -> dict:
  """weight_mode="fused" stores [q; k; v; o] and [i; f] stacked; split them."""
  tensors = dict(tensors)
  qk, v = int(E * hf["qk_dim_factor"]), int(E * hf["v_dim_factor"])
  H = hf["num_heads"]
  for key in [k for k in tensors if ".mlstm_layer.qkv_opreact." in k]:
    parts = np.split(tensors.pop(key), [qk, 2 * qk, 2 * qk + v], axis=0)
    for name, part in zip(("q", "k", "v", "ogate_preact"), parts):
      tensors[key.replace("qkv_opreact", name)] = part
  for key in [k for k in tensors if ".mlstm_layer.ifgate_preact." in k]:
    i, f = np.split(tensors.pop(key), [H], axis=0)
    tensors[key.replace("ifgate_preact", "igate_preact")] = i
    tensors[key.replace("ifgate_preact", "fgate_preact")] = f
  for key in [k for k in tensors if ".ffn.proj_up_gate_z." in k]:
    gate, z = np.split(tensors.pop(key), 2, axis=0)
    tensors[key.replace("proj_up_gate_z", "proj_up_gate")] = gate
    tensors[key.replace("proj_up_gate_z", "proj_up")] = z
  return tensors


def load_hf(path, **overrides):
  """(model, params) from a save_pretrained directory. `overrides` set execution fields of
  the ModelConfig (backend, chunk_size, dtype, scan_blocks, remat, ...)."""
  path = pathlib.Path(path)
  hf = json.loads((path / "config.json").read_text())
  cfg = config_from_hf(hf, **overrides)
  tensors = _unfuse(safetensors_io.read_checkpoint(path), hf, cfg.embedding_dim)
  if cfg.tie_embeddings:
    tensors.pop("lm_head.weight", None)
  flat, used = {}, set()
  for ours, theirs, transposed in _name_map(cfg.num_blocks):
    if theirs in tensors:
      arr = tensors[theirs]
      flat[ours] = arr.T if transposed else arr
      used.add(theirs)
  unused = sorted(set(tensors) - used)
  if unused:
    raise ValueError(f"{path}: tensors with no counterpart in the model: {unused}")
  model = LanguageModel(cfg)
  return model, build_params(model, flat, str(path))


def config_to_hf(cfg: ModelConfig) -> dict:
  if cfg.arch != "large":
    raise ValueError(f"save_hf writes transformers' xLSTM (arch='large'), not arch={cfg.arch!r}")
  if cfg.ffn_act != "silu" or cfg.igate != "exp" or cfg.fgate != "sigmoid" or \
      cfg.normalizer != "max" or not cfg.stabilize:
    raise ValueError("transformers' xLSTM has SwiGLU and the default gates; this config "
                     f"has ffn_act={cfg.ffn_act!r}, igate={cfg.igate!r}, fgate={cfg.fgate!r}, "
                     f"normalizer={cfg.normalizer!r}, stabilize={cfg.stabilize}")
  return {
      "architectures": ["xLSTMForCausalLM"], "model_type": "xlstm",
      "vocab_size": cfg.vocab_size, "hidden_size": cfg.embedding_dim,
      "embedding_dim": cfg.embedding_dim, "num_hidden_layers": cfg.num_blocks,
      "num_blocks": cfg.num_blocks, "num_heads": cfg.num_heads, "use_bias": cfg.use_bias,
      "norm_reduction_force_float32": True, "tie_word_embeddings": cfg.tie_embeddings,
      "add_out_norm": cfg.add_post_blocks_norm, "norm_eps": cfg.norm_eps,
      "qk_dim_factor": cfg.qk_dim_factor, "v_dim_factor": cfg.v_dim_factor,
      "chunkwise_kernel": "chunkwise--native_autograd",
      "sequence_kernel": "native_sequence__native", "step_kernel": "native",
      "mode": "inference", "chunk_size": cfg.chunk_size or 64, "return_last_states": True,
      "autocast_kernel_dtype": "bfloat16", "eps": _CELL_EPS,
      "inference_state_dtype": "float32", "ffn_proj_factor": cfg.ffn_proj_factor,
      "ffn_round_up_to_multiple_of": cfg.ffn_round_to, "gate_soft_cap": cfg.gate_soft_cap,
      "output_logit_soft_cap": cfg.logit_soft_cap, "weight_mode": "single", "use_cache": True,
      "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
      "max_inference_chunksize": 16384, "dtype": "float32",
  }


def save_hf(model: LanguageModel, params, path) -> None:
  """Writes config.json and model.safetensors (float32) in transformers' layout."""
  cfg = model.cfg
  hf = config_to_hf(cfg)
  flat = flatten_params(model, params)
  tensors = {}
  for ours, theirs, transposed in _name_map(cfg.num_blocks):
    if ours in flat:
      tensors[theirs] = np.ascontiguousarray(flat[ours].T if transposed else flat[ours])
  path = pathlib.Path(path)
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
  safetensors_io.write_file(path / "model.safetensors", tensors, {"format": "pt"})
