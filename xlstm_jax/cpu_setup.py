"""What a command-line entry point sets up before jax loads: `prepare_process()`.

Two settings make XLA:CPU training steps faster; the first also changes the order in
which float32 reductions sum (last-bit differences, no other effect on what is computed):

- XLA_FLAGS gets `--xla_cpu_experimental_ynn_fusion_type=-reduce`, which keeps YNNPACK's
  dots but gives reductions back to XLA's own loops. YNNPACK's reductions are very slow
  when a batch of one reduces over a long token axis (the parameter gradients of the conv,
  the norms and the biases, [1, 2048, 512] -> [512]: ~12 ms each against well under one):
  measured 2026-12-06 on a 2-core Intel Xeon (AVX-512), jax 0.10.2,
  benchmarks/train_throughput.py's models at context 2048 x batch 1, the training step
  1.4-1.5x faster; at 256 x 8 and 1024 x 2 within noise. An XLA_FLAGS that already names
  `xla_cpu_experimental_ynn_fusion_type` is left as it is (your choice wins).
- Huge-page malloc (`xlstm_jax/hugepages.py`): the process re-execs itself once with
  `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` where that helps (`XLSTM_HUGEPAGES=0` turns it
  off).

The flag is read when jax creates its CPU backend, so call `prepare_process()` first
thing, before importing jax; later it changes nothing. Nothing here imports jax.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from xlstm_jax.hugepages import reexec_with_hugepages

YNN_FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
YNN_REDUCE_OFF = f"--{YNN_FLAG_NAME}=-reduce"


def xla_flags_with_cpu_defaults(flags: str) -> str:
  """`flags` (an XLA_FLAGS value) with YNNPACK's reductions turned off, unless it already
  sets the YNNPACK fusion types itself."""
  if YNN_FLAG_NAME in flags:
    return flags
  return f"{flags} {YNN_REDUCE_OFF}".strip()


def set_cpu_xla_flags(environ: MutableMapping[str, str] = os.environ) -> None:
  """Writes `xla_flags_with_cpu_defaults` of environ's XLA_FLAGS back into it."""
  environ["XLA_FLAGS"] = xla_flags_with_cpu_defaults(environ.get("XLA_FLAGS", ""))


def prepare_process() -> None:
  """Sets the XLA:CPU flags in os.environ, then re-execs with huge-page malloc when that
  helps (the new process inherits the flags). Call it before importing jax."""
  set_cpu_xla_flags()
  reexec_with_hugepages()
