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

  def check_chunk(self) -> None:
    """ValueError when the chunk length does not suit the target's kernels."""
    L = self.chunk
    if self.target == "gpu" and (L < 16 or L & (L - 1)):
      raise ValueError(f"chunk={L}: the Triton (GPU) kernels need a power of two >= 16")
    if self.target == "tpu" and L % 8:
      raise ValueError(f"chunk={L}: the TPU kernels need a multiple of 8 (the chunk is "
                       f"the sublane axis of the [L, D] blocks)")

  def _tile(self, name: str, x: int, block: int) -> int:
    """The tile of a head dim of size x (before padding), given its block size."""
    if self.target == "gpu":
      # Tiles are Triton tensors: power-of-two sides, and tl.dot wants sides >= 16.
      if block < 16 or block & (block - 1):
        raise ValueError(f"{name}={x} with tile {block}: the Triton (GPU) kernels need a "
                         f"head-dim tile that is a power of two >= 16")
      dividing = [t for t in (block >> s for s in range(block.bit_length()))
                  if t >= 16 and x % t == 0]
      # The largest power-of-two tile that divides x; else x is padded up to the smallest
      # power of two >= x (at most the block) or a multiple of the block.
      return dividing[0] if dividing else min(block, max(16, 1 << (x - 1).bit_length()))
    if x <= block:
      return x  # a TPU block may span the whole dim
    if block % 128:
      raise ValueError(f"{name}={x} with tile {block}: a TPU tile must be a multiple of "
                       f"128 or the whole head dim")
    return block

  def padded_dims(self, Dk: int, Dv: int) -> tuple[int, int]:
    """Dk and Dv rounded up to multiples of their tiles: the op zero-pads q, k, v and the
    state to these (exact: zero columns add nothing to q.k, q.n, C or n)."""
    self.check_chunk()
    return tuple(-(-x // self._tile(name, x, b)) * self._tile(name, x, b)
                 for name, x, b in (("Dk", Dk, self.block_dk), ("Dv", Dv, self.block_dv)))

  def tiles(self, Dk: int, Dv: int) -> tuple[int, int]:
    """(block_dk, block_dv) for head dims the op has padded (`padded_dims`); ValueError
    names the shape and the constraint it breaks."""
    self.check_chunk()
    bk, bv = self._tile("Dk", Dk, self.block_dk), self._tile("Dv", Dv, self.block_dv)
    for name, x, b in (("Dk", Dk, bk), ("Dv", Dv, bv)):
      if x % b:
        raise ValueError(f"{name}={x} is not a multiple of its tile {b}: pad it to "
                         f"`padded_dims` first")
    return bk, bv

  def unsupported(self, Dk: int, Dv: int) -> str | None:
    """Why these blocks cannot run head dims (Dk, Dv), or None when they can (after the
    op's padding): the kernel registry's `supports` check."""
    try:
      self.padded_dims(Dk, Dv)
    except ValueError as err:
      return str(err)
    return None

  def compiler_params(self, parallel_axes: int, sequential_axes: int = 0):
    """Compiler params for a grid with these axes (parallel first)."""
    if self.target == "gpu":
      # Passing Triton params picks the Triton lowering: jax 0.10.2 otherwise lowers a
      # pallas_call to Mosaic GPU, which lacks transposes in this (lane) mode.
      return compat.triton_compiler_params(self.num_warps, self.num_stages)
    return compat.tpu_compiler_params(
        ("parallel",) * parallel_axes + ("arbitrary",) * sequential_axes)
