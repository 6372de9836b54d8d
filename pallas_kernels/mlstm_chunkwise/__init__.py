"""Chunkwise mLSTM forward and backward as Pallas kernels (GPU: Triton, TPU: Mosaic).

Importing this package registers the op with `xlstm_jax.ops.kernel_registry` under
"mlstm_chunkwise", which is how `ops.mlstm(backend="pallas" | "auto")` finds it.
"""

from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes
from pallas_kernels.mlstm_chunkwise.op import mlstm_chunkwise_pallas, reference
from xlstm_jax.ops import kernel_registry


def _run(q, k, v, log_i, log_f, state0, *, chunk, normalizer, stabilize, eps):
  """The dispatcher's entry point: the op with the default backend's blocks at `chunk`
  (None: the blocks' default chunk)."""
  return mlstm_chunkwise_pallas(q, k, v, log_i, log_f, state0, normalizer=normalizer,
                                stabilize=stabilize, eps=eps, blocks=BlockSizes.default(chunk))


def _supports(*, Dk: int, Dv: int, chunk: int | None) -> str | None:
  """None when the default blocks at `chunk` run head dims (Dk, Dv), else why not."""
  try:
    blocks = BlockSizes.default(chunk)
  except ValueError as err:
    return str(err)
  return blocks.unsupported(Dk, Dv)


kernel_registry.register("mlstm_chunkwise", _run, supports=_supports)

__all__ = ["BlockSizes", "mlstm_chunkwise_pallas", "reference"]
