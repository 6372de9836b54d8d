"""The fused sLSTM (whole time loop in one kernel) forward and backward as Pallas kernels
(GPU: Triton, TPU: Mosaic); the classic LSTM runs in the same kernel."""

from pallas_kernels.slstm.blocks import BlockSizes
from pallas_kernels.slstm.op import reference, slstm_pallas

__all__ = ["BlockSizes", "reference", "slstm_pallas"]
