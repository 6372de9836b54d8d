"""The model boundary: one frozen dataclass, built once from the ConfigDict.

Layers read only this object, never a ConfigDict. Three architectures share it:
  xlstm  the NeurIPS xLSTM: pre-up-projection mLSTM blocks, post-up-projection sLSTM blocks
         at the indices in `slstm_at` (xLSTM[1:0] has none, xLSTM[7:1] one in eight)
  large  the xLSTM 7B block: mLSTM in embedding space + SwiGLU, RMSNorm, soft caps
  llama  the Transformer baseline: RMSNorm, RoPE, causal attention, SwiGLU
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax.numpy as jnp

from xlstm_jax.ops.gates import GateOptions

ARCHS = ("xlstm", "large", "llama")
MLSTM_BACKENDS = ("auto", "recurrent", "parallel", "chunkwise", "pallas")
SLSTM_BACKENDS = ("auto", "recurrent", "pallas")
SLSTM_CELLS = ("slstm", "lstm")
FFN_ACTS = ("gelu", "silu", "relu")
GATE_MODES = ("learned", "bias", "fixed")
DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Every field of every architecture; fields an architecture does not use are ignored."""

  arch: str = "xlstm"                # xlstm | large | llama
  vocab_size: int = 256              # tokens
  vocab_pad_multiple: int = 1        # embedding rows / logits padded to a multiple of this
                                     # (so a mesh axis divides them); padded logits are masked
  embedding_dim: int = 128           # residual stream width E
  num_blocks: int = 2                # residual blocks
  num_heads: int = 4                 # mLSTM heads (xlstm, large) or attention heads (llama)
  slstm_at: tuple[int, ...] = ()     # xlstm: block indices that are sLSTM blocks
  # mLSTM block of the xlstm arch (pre up-projection)
  mlstm_proj_factor: float = 2.0     # inner width = proj_factor * E, rounded up to 64
  conv_kernel_size: int = 4          # causal depthwise conv before q, k (0: none)
  qkv_proj_blocksize: int = 4        # block size of the block-diagonal q, k, v projections
  # sLSTM block of the xlstm arch (post up-projection)
  slstm_num_heads: int = 4           # sLSTM heads (each has its own recurrent block)
  slstm_conv_kernel_size: int = 4    # causal conv feeding the i, f gates (0: none)
  slstm_cell: str = "slstm"          # slstm | lstm (classic sigmoid LSTM baseline)
  memory_mixing: bool = True         # recurrent matrix R on (sLSTM) or off (R = 0)
  slstm_fgate_bias_init: str = "powerlaw_blockdependent"  # | linspace (3..6) | zeros
  # feed-forward (sLSTM blocks, large blocks, llama)
  ffn_proj_factor: float = 1.3       # hidden = factor * E rounded up to ffn_round_to
  ffn_round_to: int = 64             # rounding multiple of the FFN hidden width
  ffn_act: str = "gelu"              # gate activation: gelu (xlstm) | silu (SwiGLU) | relu
  # large block (xLSTM 7B)
  qk_dim_factor: float = 0.5         # q, k width = factor * E (all heads together)
  v_dim_factor: float = 1.0          # v width = factor * E
  igate_bias_init: float = 0.0       # xlstm: mean of N(., 0.1); large: the constant (-10)
  norm_eps: float = 1e-5             # eps of all norms (1e-5 xlstm, 1e-6 large/llama)
  use_bias: bool = False             # biases in the linear layers
  # gates of every mLSTM / sLSTM cell (ablations)
  igate: str = "exp"                 # exp | sigmoid
  fgate: str = "sigmoid"             # sigmoid | exp
  normalizer: str = "max"            # max | abs | none
  stabilize: bool = True             # stabilizer state m on/off
  gate_soft_cap: float | None = None  # cap * tanh(x / cap) on gate pre-activations (15 in 7B)
  igate_mode: str = "learned"        # xlstm arch, input gate: learned (input-dependent + bias)
                                     # | bias (a learnable bias only) | fixed (its init, frozen)
  fgate_mode: str = "learned"        # the same for the forget gate (the paper's Table 2 rows)
  # head
  tie_embeddings: bool = False       # LM head reuses the embedding matrix
  logit_soft_cap: float | None = None  # cap * tanh(logits / cap) (30 in 7B)
  add_post_blocks_norm: bool = True  # norm after the last block
  rope_theta: float = 10000.0        # llama: RoPE base
  attn_conv_kernel_size: int = 0     # llama: causal depthwise conv + SiLU feeding q and k, as
                                     # in the mLSTM block and Zoology's attention baseline
                                     # (0: none, the plain Llama)
  # execution
  backend: str = "auto"              # mLSTM form: auto | recurrent | parallel | chunkwise | pallas
  chunk_size: int | None = None      # chunk length of chunkwise/pallas; None: the form's default
  slstm_backend: str | None = None   # sLSTM form: auto | recurrent | pallas; None follows
                                     # `backend` (pallas -> pallas, auto -> auto, else recurrent)
  scan_blocks: bool = False          # nn.scan over identical blocks (faster compiles)
  remat: bool = False                # rematerialise each block in the backward pass
  dtype: str = "float32"             # activation dtype
  param_dtype: str = "float32"       # parameter dtype

  @property
  def slstm_form(self) -> str:
    """The sLSTM backend the blocks run: `slstm_backend`, or the one `backend` implies."""
    if self.slstm_backend is not None:
      return self.slstm_backend
    return self.backend if self.backend in SLSTM_BACKENDS else "recurrent"

  def __post_init__(self):
    def check(ok, msg):
      if not ok:
        raise ValueError(msg)
    object.__setattr__(self, "slstm_at", tuple(int(i) for i in self.slstm_at))
    check(self.arch in ARCHS, f"arch={self.arch!r} is not one of {ARCHS}")
    for name in ("vocab_size", "vocab_pad_multiple", "embedding_dim", "num_blocks", "num_heads",
                 "slstm_num_heads", "qkv_proj_blocksize", "ffn_round_to"):
      value = getattr(self, name)
      check(isinstance(value, int) and value > 0, f"{name}={value!r} must be a positive int")
    for i in self.slstm_at:
      check(0 <= i < self.num_blocks,
            f"slstm_at={self.slstm_at} has index {i} outside [0, num_blocks={self.num_blocks})")
    check(self.arch == "xlstm" or not self.slstm_at,
          f"slstm_at={self.slstm_at} needs arch='xlstm', not {self.arch!r}")
    check(self.chunk_size is None or (isinstance(self.chunk_size, int) and self.chunk_size > 0),
          f"chunk_size={self.chunk_size!r} must be None or a positive int")
    check(self.slstm_cell in SLSTM_CELLS, f"slstm_cell={self.slstm_cell!r} not in {SLSTM_CELLS}")
    check(self.ffn_act in FFN_ACTS, f"ffn_act={self.ffn_act!r} is not one of {FFN_ACTS}")
    check(self.backend in MLSTM_BACKENDS,
          f"backend={self.backend!r} is not one of {MLSTM_BACKENDS}")
    check(self.slstm_backend is None or self.slstm_backend in SLSTM_BACKENDS,
          f"slstm_backend={self.slstm_backend!r} is not None or one of {SLSTM_BACKENDS}")
    for name in ("dtype", "param_dtype"):
      check(getattr(self, name) in DTYPES, f"{name}={getattr(self, name)!r} not in {DTYPES}")
    check(self.slstm_fgate_bias_init in ("powerlaw_blockdependent", "linspace", "zeros"),
          f"slstm_fgate_bias_init={self.slstm_fgate_bias_init!r} is not one of "
          "('powerlaw_blockdependent', 'linspace', 'zeros')")
    check(self.logit_soft_cap is None or self.logit_soft_cap > 0,
          f"logit_soft_cap={self.logit_soft_cap!r} must be None or > 0")
    self.gate_options  # validates the gate knobs
    for name in ("igate_mode", "fgate_mode"):
      mode = getattr(self, name)
      check(mode in GATE_MODES, f"{name}={mode!r} is not one of {GATE_MODES}")
      check(mode == "learned" or self.arch == "xlstm",
            f"{name}={mode!r} needs arch='xlstm' (the ablation blocks), not {self.arch!r}")
    E, H = self.embedding_dim, self.num_heads
    if self.arch == "xlstm":
      inner = self.mlstm_inner_dim
      check(inner % H == 0, f"mLSTM inner width {inner} is not divisible by num_heads={H}")
      check(inner % self.qkv_proj_blocksize == 0,
            f"mLSTM inner width {inner} is not divisible by "
            f"qkv_proj_blocksize={self.qkv_proj_blocksize}")
      check(not self.slstm_at or E % self.slstm_num_heads == 0,
            f"embedding_dim={E} is not divisible by slstm_num_heads={self.slstm_num_heads}")
    elif self.arch == "large":
      check(self.qk_dim % H == 0 and self.v_dim % H == 0,
            f"q/k width {self.qk_dim} and v width {self.v_dim} must be divisible by "
            f"num_heads={H}")
    else:
      check(isinstance(self.attn_conv_kernel_size, int) and self.attn_conv_kernel_size >= 0,
            f"attn_conv_kernel_size={self.attn_conv_kernel_size!r} must be an int >= 0")
      check(E % H == 0 and (E // H) % 2 == 0,
            f"embedding_dim={E} / num_heads={H} must be an even integer head dim for RoPE")
    check(not (self.scan_blocks and self.slstm_at),
          f"scan_blocks=True needs identical blocks, but slstm_at={self.slstm_at} mixes sLSTM "
          "blocks in (their forget-gate init depends on the block index)")

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
    """Builds the config from a ConfigDict or dict, refusing unknown keys by name."""
    d = dict(d.items()) if hasattr(d, "items") else dict(d)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ValueError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
    if "slstm_at" in d:
      d["slstm_at"] = tuple(d["slstm_at"])
    return cls(**d)

  def replace(self, **kw) -> "ModelConfig":
    return dataclasses.replace(self, **kw)

  @property
  def gate_options(self) -> GateOptions:
    return GateOptions(self.igate, self.fgate, self.normalizer, self.stabilize,
                       self.gate_soft_cap)

  @property
  def gate_kwargs(self) -> dict:
    return dataclasses.asdict(self.gate_options)

  @property
  def padded_vocab_size(self) -> int:
    """Rows of the embedding and columns of the logits: vocab_size rounded up to
    vocab_pad_multiple. Ids >= vocab_size are never tokens; their logits are masked."""
    return round_up(self.vocab_size, self.vocab_pad_multiple)

  @property
  def mlstm_inner_dim(self) -> int:
    return round_up(self.mlstm_proj_factor * self.embedding_dim, 64)

  @property
  def ffn_dim(self) -> int:
    return round_up(self.ffn_proj_factor * self.embedding_dim, self.ffn_round_to)

  @property
  def qk_dim(self) -> int:
    return int(self.embedding_dim * self.qk_dim_factor)

  @property
  def v_dim(self) -> int:
    return int(self.embedding_dim * self.v_dim_factor)

  @property
  def block_types(self) -> tuple[str, ...]:
    """The block at each depth: "mlstm", "slstm", "large" or "llama"."""
    if self.arch == "xlstm":
      return tuple("slstm" if i in self.slstm_at else "mlstm" for i in range(self.num_blocks))
    return (self.arch,) * self.num_blocks

  @property
  def jnp_dtype(self):
    return jnp.dtype(self.dtype)

  @property
  def jnp_param_dtype(self):
    return jnp.dtype(self.param_dtype)


def round_up(x: float, multiple: int) -> int:
  """Smallest multiple of `multiple` >= x; the slack absorbs float error (8/3 * 768)."""
  return int(math.ceil(x / multiple - 1e-9) * multiple)


def slstm_positions(num_blocks: int, ratio: tuple[int, int]) -> tuple[int, ...]:
  """sLSTM block indices for the paper's xLSTM[m:s] notation: s sLSTM blocks per m + s,
  spread evenly (the last of each group). The paper's own runs fixed explicit positions;
  the presets use those."""
  m, s = ratio
  if m < 0 or s < 0 or m + s == 0:
    raise ValueError(f"ratio={ratio} must be (m, s) with m, s >= 0 and m + s > 0")
  group = m + s
  return tuple(i for i in range(num_blocks) if i % group >= m)
