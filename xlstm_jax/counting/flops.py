"""Training FLOPs per token of a model config, and accelerator peaks, for MFU.

  flops = train_flops_per_token(cfg, seq_len)       # 6 N + 3 x sequence mixing (forward)
  mfu = flops * tokens_per_s / (peak_flops(jax.devices()[0], cfg.dtype) * num_devices)

Model FLOPs count the useful arithmetic, the same way for every architecture, so MFU
compares them fairly (recomputation from remat is not counted, as usual for MFU):
- Every parameter outside the embedding lookup is used in one multiply-add per token:
  2 N forward, 4 N backward (the PaLM convention 6 N). The embedding table counts only
  when it is tied to the LM head (then it is the head's matmul).
- Sequence mixing, forward, per token and layer (backward = 2x forward):
  attention (Llama)   causal: q.k and p.v over T/2 keys on average   -> 2 T d
  mLSTM (chunkwise)   causal within a chunk of L (L/2 on average): L (dqk + dv) per head,
                      plus reading and updating the dqk x dv state: 4 dqk dv per head
  sLSTM               its recurrent matrix is a parameter, counted in 6 N
"""

from __future__ import annotations

import jax.numpy as jnp

from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.counting.params import count_params

# Dense peak FLOP/s per device (vendor datasheets), by a substring of `device_kind`.
# bfloat16 tensor-core peaks; float32 matmuls on GPU run as TF32 by default in XLA.
_PEAKS = {  # device_kind substring: (bfloat16, float32)
    "H200": (989.4e12, 494.7e12),
    "H100": (989.4e12, 494.7e12),
    "A100": (312e12, 156e12),
    "TPU v4": (275e12, 275e12),
    "TPU v5 lite": (197e12, 197e12),
    "TPU v5e": (197e12, 197e12),
    "TPU v5p": (459e12, 459e12),
    "TPU v6": (918e12, 918e12),
}


def peak_flops(device, dtype: str = "bfloat16") -> float | None:
  """Datasheet dense peak FLOP/s of `device` for `dtype` matmuls; None if unknown (CPUs)."""
  for key, (bf16, fp32) in _PEAKS.items():
    if key in device.device_kind:
      return fp32 if jnp.dtype(dtype) == jnp.float32 else bf16
  return None


def matmul_params(cfg: ModelConfig) -> int:
  """Parameters that do a multiply-add per token: all but an untied embedding table."""
  embedding = 0 if cfg.tie_embeddings else cfg.padded_vocab_size * cfg.embedding_dim
  return count_params(cfg) - embedding


def mixing_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Forward FLOPs of the sequence-mixing (non-parameter) matmuls per token, all layers."""
  total = 0.0
  for kind in cfg.block_types:
    if kind == "llama":
      total += 2 * seq_len * cfg.embedding_dim
    elif kind in ("mlstm", "large"):
      if kind == "mlstm":
        dqk = dv = cfg.mlstm_inner_dim // cfg.num_heads
      else:
        dqk, dv = cfg.qk_dim // cfg.num_heads, cfg.v_dim // cfg.num_heads
      chunk = min(cfg.chunk_size or 64, seq_len)
      total += cfg.num_heads * (chunk * (dqk + dv) + 4 * dqk * dv)
  return total


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Model FLOPs of one training token (forward + backward) at context `seq_len`."""
  return 6 * matmul_params(cfg) + 3 * mixing_flops_per_token(cfg, seq_len)
