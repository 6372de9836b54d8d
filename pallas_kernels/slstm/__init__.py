"""The fused sLSTM (whole time loop in one kernel) forward and backward as Pallas kernels
(GPU: Triton, TPU: Mosaic); the classic LSTM runs in the same kernel.

Importing this package registers the op with `xlstm_jax.ops.kernel_registry` under
"slstm_fused", which is how `ops.slstm` / `ops.lstm` (backend="pallas" | "auto") find it.
"""

from pallas_kernels.slstm.blocks import BlockSizes
from pallas_kernels.slstm.op import reference, slstm_pallas
from xlstm_jax.ops import kernel_registry


def _supports(*, T: int, D: int, dtype) -> str | None:
  """None when the default blocks run this shape, else why not."""
  try:
    BlockSizes.default().check(T, D, dtype)
  except ValueError as err:
    return str(err)
  return None


kernel_registry.register("slstm_fused", slstm_pallas, supports=_supports)

__all__ = ["BlockSizes", "reference", "slstm_pallas"]
