"""Presets: parameter counts equal the official models and the papers; configs validate."""

import json
import pathlib

import pytest

from xlstm_jax import presets
from xlstm_jax.nn import ModelConfig, slstm_positions
from xlstm_jax.counting import count_params

REFERENCE = json.loads(
    (pathlib.Path(__file__).parent / "fixtures" / "param_counts_reference.json").read_text())
PAPER_SIZES = sorted(REFERENCE["presets"])


@pytest.mark.parametrize("name", PAPER_SIZES)
def test_param_count_matches_official_and_paper(name):
  ref = REFERENCE["presets"][name]
  ours = count_params(presets.model_config(name))
  assert ours == ref["official_params"], (name, ours, ref["official_params"])
  assert abs(ours - ref["paper_params"]) / ref["paper_params"] < 0.02, (name, ours)


def test_every_paper_size_has_a_reference():
  non_tiny = {n for n in presets.PRESETS if not n.endswith("tiny")}
  assert non_tiny == set(PAPER_SIZES)


def test_docs_table_lists_current_counts():
  table = (pathlib.Path(__file__).parents[1] / "docs" / "param_counts.md").read_text()
  for name in ("xlstm71_350m", "llama_125m", "xlstm_7b"):
    row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    assert f"{count_params(presets.model_config(name)):,}" in row


def test_config_dict_round_trips_and_takes_overrides():
  d = presets.model_config_dict("xlstm_tiny")
  d.igate = "sigmoid"
  d.gate_soft_cap = 15.0
  cfg = ModelConfig.from_dict(d)
  assert cfg.igate == "sigmoid" and cfg.gate_soft_cap == 15.0 and cfg.slstm_at == (1,)
  assert ModelConfig.from_dict(presets.model_config_dict("xlstm_7b")) == presets.model_config(
      "xlstm_7b")


@pytest.mark.parametrize("kwargs, match", [
    (dict(arch="mamba"), "arch='mamba'"),
    (dict(slstm_at=(5,), num_blocks=2), "index 5 outside"),
    (dict(scan_blocks=True, slstm_at=(0,)), "scan_blocks=True needs identical blocks"),
    (dict(igate="relu"), "igate='relu'"),
    (dict(normalizer="none"), "normalizer='none' with igate='exp'"),
    (dict(num_heads=3), "not divisible by num_heads=3"),
    (dict(backend="cuda"), "backend='cuda'"),
    (dict(embedding_dim=0), "embedding_dim=0"),
])
def test_bad_configs_name_the_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    ModelConfig(**kwargs)


def test_unknown_keys_and_presets_are_refused():
  with pytest.raises(ValueError, match="unknown model config keys \\['num_layers'\\]"):
    ModelConfig.from_dict({"num_layers": 3})
  with pytest.raises(ValueError, match="preset 'gpt2' is unknown"):
    presets.model_config("gpt2")


def test_slstm_positions_ratio():
  assert slstm_positions(16, (7, 1)) == (7, 15)
  assert slstm_positions(4, (1, 0)) == ()
  assert slstm_positions(3, (0, 1)) == (0, 1, 2)
  with pytest.raises(ValueError, match="ratio"):
    slstm_positions(4, (0, 0))
