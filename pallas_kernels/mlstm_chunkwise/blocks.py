"""Block sizes of the chunkwise mLSTM kernels, per target, and the shape checks.

Two targets, one kernel source:
  gpu  Triton lowering (`pallas_call` with Triton compiler params). Every tile is a
       Triton tensor: power-of-two sides, and tl.dot wants sides >= 16.
  tpu  Mosaic lowering. Blocks respect the (8, 128) tiling of their last two dims (or span
       them): the chunk is a multiple of 8, head-dim tiles multiples of 128 or whole.
The state recurrence differs by target (`state_scan`): on GPU one program walks all chunks
in a loop (the grid is parallel); on TPU the chunks are a sequential ("arbitrary") grid
axis, because a whole sequence of keys does not fit VMEM.
"""

from __future__ import annotations

import dataclasses

import jax

from pallas_kernels import compat

TARGETS = ("gpu", "tpu")


# Untuned starting points (no accelerator measured yet, see docs/design.md):
# (chunk, block_dk, block_dv) per target.
_DEFAULTS = {"gpu": (64, 64, 64), "tpu": (128, 128, 128)}


@dataclasses.dataclass(frozen=True)
class BlockSizes:
  """target: "gpu" (Triton) or "tpu" (Mosaic). chunk: tokens per chunk (L).
  block_dk / block_dv: head-dim tiles inside the kernels (clamped to the head dim).
  Left None, they take the target's default. num_warps / num_stages: Triton only."""

  target: str = "gpu"
  chunk: int | None = None
  block_dk: int | None = None
  block_dv: int | None = None
  num_warps: int = 4
  num_stages: int = 2

  def __post_init__(self):
    if self.target not in TARGETS:
      raise ValueError(f"target={self.target!r} is not one of {TARGETS}")
    for name, default in zip(("chunk", "block_dk", "block_dv"), _DEFAULTS[self.target]):
      if getattr(self, name) is None:
        object.__setattr__(self, name, default)
    for name in ("chunk", "block_dk", "block_dv", "num_warps", "num_stages"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")

  @classmethod
  def default(cls, chunk: int | None = None) -> BlockSizes:
    """The default backend's blocks (CPU runs the GPU configuration in interpret mode)."""
    return cls("tpu" if jax.default_backend() == "tpu" else "gpu", chunk=chunk)

  @property
  def state_scan(self) -> str:
    return "loop" if self.target == "gpu" else "grid"

  def tiles(self, Dk: int, Dv: int) -> tuple[int, int]:
    """(block_dk, block_dv) for these head dims, after checking them: ValueError names
    the shape and the constraint it breaks."""
    bk, bv = min(self.block_dk, Dk), min(self.block_dv, Dv)
    L = self.chunk
    if self.target == "gpu":
      # Tiles are Triton tensors: power-of-two sides, and tl.dot wants sides >= 16.
      if L < 16 or L & (L - 1):
        raise ValueError(f"chunk={L}: the Triton (GPU) kernels need a power of two >= 16")
      for name, x, b in (("Dk", Dk, bk), ("Dv", Dv, bv)):
        if b < 16 or b & (b - 1):
          raise ValueError(f"{name}={x} with tile {b}: the Triton (GPU) kernels need a "
                           f"head-dim tile that is a power of two >= 16")
    else:
      if L % 8:
        raise ValueError(f"chunk={L}: the TPU kernels need a multiple of 8 (the chunk is "
                         f"the sublane axis of the [L, D] blocks)")
      for name, x, b in (("Dk", Dk, bk), ("Dv", Dv, bv)):
        if b != x and b % 128:
          raise ValueError(f"{name}={x} with tile {b}: a TPU tile must be a multiple of "
                           f"128 or the whole head dim")
    for name, x, b in (("Dk", Dk, bk), ("Dv", Dv, bv)):
      if x % b:
        raise ValueError(f"{name}={x} is not a multiple of its tile {b}")
    return bk, bv

  def compiler_params(self, parallel_axes: int, sequential_axes: int = 0):
    """Compiler params for a grid with these axes (parallel first)."""
    if self.target == "gpu":
      # Passing Triton params picks the Triton lowering: jax 0.10.2 otherwise lowers a
      # pallas_call to Mosaic GPU, which lacks transposes in this (lane) mode.
      return compat.triton_compiler_params(self.num_warps, self.num_stages)
    return compat.tpu_compiler_params(
        ("parallel",) * parallel_axes + ("arbitrary",) * sequential_axes)
