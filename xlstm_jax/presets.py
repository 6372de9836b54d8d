"""Model presets: the paper's sizes, the xLSTM 7B, and tiny models for CPU.

  model_config("xlstm71_350m")            -> ModelConfig
  model_config_dict("llama_125m")         -> ml_collections.ConfigDict (every field, for
                                             command-line overrides of single fields)
Sizes follow the xLSTM paper (arXiv 2405.04517, Table 7, App. B.2) and the xLSTM 7B paper
(arXiv 2503.13427, Table 4); vocab 50304 is GPT-2's 50257 padded to a multiple of 64, as
in the official configs. `python -m xlstm_jax.presets [tests/fixtures/param_counts_reference.json]`
prints the parameter-count table of docs/param_counts.md.
"""

from __future__ import annotations

import dataclasses
import sys

import ml_collections
from ml_collections import config_dict

from xlstm_jax.nn.config import ModelConfig

# The paper's sLSTM positions for xLSTM[7:1] (App. B.2): 24 blocks -> [3, 20] (11:1),
# 48 blocks -> [3, 5, 7, 40, 42, 44].
_SLSTM_AT_24 = (3, 20)
_SLSTM_AT_48 = (3, 5, 7, 40, 42, 44)
_SIZES = {  # name: (embedding_dim, xLSTM blocks, Llama layers, Llama heads)
    "125m": (768, 24, 12, 12),
    "350m": (1024, 48, 24, 16),
    "760m": (1536, 48, 24, 16),
    "1_3b": (2048, 48, 24, 16),
    "2_7b": (2560, 64, 32, 32),  # scaling table only; no xLSTM[7:1] positions given
}

_XLSTM = dict(arch="xlstm", vocab_size=50304, num_heads=4, mlstm_proj_factor=2.0,
              conv_kernel_size=4, qkv_proj_blocksize=4, slstm_num_heads=4,
              ffn_proj_factor=1.3, ffn_act="gelu", norm_eps=1e-5)
_LLAMA = dict(arch="llama", vocab_size=50304, ffn_proj_factor=8 / 3, ffn_act="silu",
              norm_eps=1e-6)
_LARGE = dict(arch="large", num_heads=8, qk_dim_factor=0.5, v_dim_factor=1.0,
              ffn_proj_factor=2.667, ffn_act="silu", norm_eps=1e-6, igate_bias_init=-10.0,
              gate_soft_cap=15.0, logit_soft_cap=30.0)


def _build() -> dict[str, dict]:
  presets = {}
  for size, (E, blocks, layers, heads) in _SIZES.items():
    presets[f"xlstm10_{size}"] = dict(_XLSTM, embedding_dim=E, num_blocks=blocks)
    if blocks in (24, 48):
      presets[f"xlstm71_{size}"] = dict(
          _XLSTM, embedding_dim=E, num_blocks=blocks,
          slstm_at=_SLSTM_AT_24 if blocks == 24 else _SLSTM_AT_48)
    presets[f"llama_{size}"] = dict(_LLAMA, embedding_dim=E, num_blocks=layers, num_heads=heads)
  presets["xlstm_7b"] = dict(_LARGE, vocab_size=50304, embedding_dim=4096, num_blocks=32)
  # Tiny models that train in minutes on a CPU (byte-level vocab of 256).
  presets["xlstm_tiny"] = dict(_XLSTM, vocab_size=256, embedding_dim=64, num_blocks=4,
                               slstm_at=(1,), chunk_size=32)
  presets["xlstm10_tiny"] = dict(_XLSTM, vocab_size=256, embedding_dim=64, num_blocks=4,
                                 chunk_size=32)
  presets["large_tiny"] = dict(_LARGE, vocab_size=256, embedding_dim=64, num_blocks=4,
                               num_heads=2, chunk_size=32)
  presets["llama_tiny"] = dict(_LLAMA, vocab_size=256, embedding_dim=64, num_blocks=4,
                               num_heads=4)
  return presets


PRESETS: dict[str, dict] = _build()


def model_config(name: str, **overrides) -> ModelConfig:
  """The preset `name` with `overrides` applied, validated."""
  if name not in PRESETS:
    raise ValueError(f"preset {name!r} is unknown; known presets: {sorted(PRESETS)}")
  return ModelConfig(**{**PRESETS[name], **overrides})


def model_config_dict(name: str) -> ml_collections.ConfigDict:
  """Every ModelConfig field of preset `name` as a ConfigDict; None fields become typed
  placeholders so `--config.model.gate_soft_cap=15` parses."""
  cfg = model_config(name)
  d = ml_collections.ConfigDict()
  for field in dataclasses.fields(ModelConfig):
    value = getattr(cfg, field.name)
    if value is None:
      value = config_dict.placeholder(int if "int" in str(field.type) else float)
    setattr(d, field.name, value)
  return d


SYNTHETIC_FAMILIES = ("slstm", "mlstm", "xlstm11", "llama", "lstm")


def synthetic_model_dict(family: str, vocab_size: int, embedding_dim: int = 64,
                         num_blocks: int = 2, num_heads: int = 4) -> ml_collections.ConfigDict:
  """The model families the paper compares on its synthetic tasks, CPU-sized, as a
  ConfigDict: "slstm" xLSTM[0:1] (sLSTM blocks only), "mlstm" xLSTM[1:0], "xlstm11"
  xLSTM[1:1] (alternating, mLSTM first), "llama" the Transformer baseline, "lstm" the
  classic sigmoid LSTM in the sLSTM block (same size as "slstm")."""
  if family not in SYNTHETIC_FAMILIES:
    raise ValueError(f"model family {family!r} is not one of {SYNTHETIC_FAMILIES}")
  d = model_config_dict("llama_tiny" if family == "llama" else "xlstm_tiny")
  d.vocab_size, d.embedding_dim, d.num_blocks = vocab_size, embedding_dim, num_blocks
  d.num_heads = num_heads
  if family != "llama":
    d.slstm_num_heads = num_heads
    d.slstm_at = {"slstm": tuple(range(num_blocks)), "lstm": tuple(range(num_blocks)),
                  "mlstm": (), "xlstm11": tuple(range(1, num_blocks, 2))}[family]
    d.slstm_cell = "lstm" if family == "lstm" else "slstm"
  ModelConfig.from_dict(d)  # validates now, not at the first step
  return d


def param_count_table(paper: dict[str, float] | None = None) -> str:
  """Markdown table of every non-tiny preset's parameter count, counted from the built
  model; `paper` (preset -> count) adds the paper's figure and the relative difference."""
  from xlstm_jax.counting.params import count_params  # noqa: PLC0415 (keeps import light)
  paper = paper or {}
  rows = ["| preset | arch | E | blocks | sLSTM at | parameters | paper | difference |",
          "|---|---|---|---|---|---:|---:|---:|"]
  for name, p in PRESETS.items():
    if name.endswith("tiny"):
      continue
    n = count_params(model_config(name))
    ref = paper.get(name)
    ref_cols = f"{ref / 1e6:,.1f}M | {(n - ref) / ref:+.3%}" if ref else "- | -"
    rows.append(f"| {name} | {p['arch']} | {p['embedding_dim']} | {p['num_blocks']} | "
                f"{list(p.get('slstm_at', ())) or '-'} | {n:,} | {ref_cols} |")
  return "\n".join(rows)


if __name__ == "__main__":
  import json  # noqa: PLC0415
  ref = sys.argv[1] if len(sys.argv) > 1 else None
  paper = ({k: v["paper_params"] for k, v in json.load(open(ref))["presets"].items()}
           if ref else None)
  sys.stdout.write(param_count_table(paper) + "\n")
