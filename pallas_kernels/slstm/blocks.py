"""Block sizes of the fused sLSTM kernels, per target, and the shape checks.

One program owns a block of the batch of one head for the whole sequence (the time loop
runs inside the kernel), so the grid is (batch blocks, heads), both parallel.
  gpu  Triton lowering. Tiles are Triton tensors: power-of-two sides, tl.dot wants
       sides >= 16, so the batch block is a power of two >= 16 (the batch is padded up
       to it) and the head dim a power of two >= 16.
  tpu  Mosaic lowering. The [batch block, D] tiles respect the (8, 128) tiling: the batch
       block is a multiple of 8 and the head dim a multiple of 128 or the whole head.
       The whole sequence's block sits in VMEM (no time-blocked grid yet), so T is
       bounded: `check` refuses a block over `tpu_vmem_bytes`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from pallas_kernels import compat

TARGETS = ("gpu", "tpu")

# Untuned starting points (see docs/design.md): batch block per target.
_DEFAULT_BATCH_BLOCK = {"gpu": 16, "tpu": 8}


@dataclasses.dataclass(frozen=True)
class BlockSizes:
  """target: "gpu" (Triton) or "tpu" (Mosaic). batch_block: sequences per program (None:
  the target's default). hoist_r: load the head's recurrent matrix into registers once,
  before the time loop (None: when D <= 64; larger heads re-read it from the L1/L2-resident
  block each step, as registers cannot hold 4 D x D). num_warps / num_stages: Triton only.
  tpu_vmem_bytes: the largest per-program block the TPU target accepts."""

  target: str = "gpu"
  batch_block: int | None = None
  hoist_r: bool | None = None
  num_warps: int = 4
  num_stages: int = 1
  tpu_vmem_bytes: int = 24 * 2**20

  def __post_init__(self):
    if self.target not in TARGETS:
      raise ValueError(f"target={self.target!r} is not one of {TARGETS}")
    if self.batch_block is None:
      object.__setattr__(self, "batch_block", _DEFAULT_BATCH_BLOCK[self.target])
    for name in ("batch_block", "num_warps", "num_stages", "tpu_vmem_bytes"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")

  @classmethod
  def default(cls) -> BlockSizes:
    """The default backend's blocks (CPU runs the GPU configuration in interpret mode)."""
    return cls("tpu" if jax.default_backend() == "tpu" else "gpu")

  def hoist(self, D: int) -> bool:
    return D <= 64 if self.hoist_r is None else self.hoist_r

  def check(self, T: int, D: int, dtype) -> None:
    """Raises ValueError naming the shape and the constraint it breaks."""
    bb = self.batch_block
    if self.target == "gpu":
      if bb < 16 or bb & (bb - 1):
        raise ValueError(f"batch_block={bb}: the Triton (GPU) kernel needs a power of two "
                         f">= 16 (it is a matmul side)")
      if D < 16 or D & (D - 1):
        raise ValueError(f"head dim D={D}: the Triton (GPU) kernel needs a power of two >= 16")
      return
    if bb % 8:
      raise ValueError(f"batch_block={bb}: the TPU kernel needs a multiple of 8")
    if D % 128 and D not in (8, 16, 32, 64):
      raise ValueError(f"head dim D={D}: the TPU kernel needs a multiple of 128 (or 8..64)")
    itemsize = np.dtype(dtype).itemsize
    # x block (4 gates) + dx, and 4 stored float32 states + dh; double-buffered.
    need = 2 * T * bb * D * (2 * 4 * itemsize + 5 * 4)
    if need > self.tpu_vmem_bytes:
      raise ValueError(f"T={T}, D={D}, batch_block={bb}: a program's blocks take {need} "
                       f"bytes of VMEM, over tpu_vmem_bytes={self.tpu_vmem_bytes}; use a "
                       f"shorter sequence (pass the state across calls) or a smaller batch_block")

  def compiler_params(self):
    """Compiler params for the (batch blocks, heads) grid."""
    if self.target == "gpu":
      # Triton params pick the Triton lowering (jax 0.10.2 defaults to Mosaic GPU).
      return compat.triton_compiler_params(self.num_warps, self.num_stages)
    return compat.tpu_compiler_params(("parallel", "parallel"))
