"""Model FLOPs per training token (for MFU) against the formulas written out by hand."""

import types

import pytest

from xlstm_jax import presets
from xlstm_jax.counting import count_params, peak_flops, train_flops_per_token
from xlstm_jax.counting.flops import matmul_params, mixing_flops_per_token


def test_llama_is_6n_plus_causal_attention():
  cfg = presets.model_config("llama_tiny")
  T, E, V, L = 256, cfg.embedding_dim, cfg.vocab_size, cfg.num_blocks
  n = count_params(cfg) - V * E  # the untied embedding lookup does no matmul
  assert matmul_params(cfg) == n
  assert train_flops_per_token(cfg, T) == 6 * n + 3 * L * 2 * T * E


def test_mlstm_counts_the_chunk_and_the_state():
  cfg = presets.model_config("xlstm_tiny")  # 4 blocks, sLSTM at 1, chunk 32
  H, d = cfg.num_heads, cfg.mlstm_inner_dim // cfg.num_heads
  per_block = H * (32 * (d + d) + 4 * d * d)
  assert mixing_flops_per_token(cfg, 256) == 3 * per_block  # the sLSTM block adds none
  assert mixing_flops_per_token(cfg, 16) == 3 * H * (16 * 2 * d + 4 * d * d)  # chunk <= T
  tied = cfg.replace(tie_embeddings=True)
  assert matmul_params(tied) == count_params(tied)


def test_large_block_uses_its_qk_and_v_widths():
  cfg = presets.model_config("large_tiny")
  H, dqk, dv = cfg.num_heads, cfg.qk_dim // cfg.num_heads, cfg.v_dim // cfg.num_heads
  assert dqk != dv
  assert mixing_flops_per_token(cfg, 64) == cfg.num_blocks * H * (32 * (dqk + dv) + 4 * dqk * dv)


@pytest.mark.parametrize("kind, dtype, want", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4e12), ("NVIDIA H100 80GB HBM3", "float32", 494.7e12),
    ("NVIDIA A100-SXM4-40GB", "bfloat16", 312e12), ("TPU v5 lite", "bfloat16", 197e12),
    ("cpu", "bfloat16", None)])
def test_peak_flops_by_device_kind(kind, dtype, want):
  assert peak_flops(types.SimpleNamespace(device_kind=kind), dtype) == want
