"""Chunkwise mLSTM forward and backward as Pallas kernels (GPU: Triton, TPU: Mosaic)."""

from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes
from pallas_kernels.mlstm_chunkwise.op import mlstm_chunkwise_pallas, reference

__all__ = ["BlockSizes", "mlstm_chunkwise_pallas", "reference"]
