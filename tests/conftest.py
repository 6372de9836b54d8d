"""Test setup: 8 simulated CPU devices, set before jax is imported anywhere.

`XLSTM_PALLAS_COMPILED=1` runs the tests on the machine's accelerator instead of the CPU,
so the Pallas kernels (whose `interpret=None` default interprets on CPU only) run compiled
for the hardware: `XLSTM_PALLAS_COMPILED=1 python -m pytest tests/test_pallas_mlstm.py`
on a GPU (the GPU suite's second part). Float32 matmuls outside the kernels then run at
full precision too (`jax_default_matmul_precision=highest`; GPUs default to TF32), so the
references keep the precision the tolerances assume.
"""

import os

PALLAS_COMPILED = os.environ.get("XLSTM_PALLAS_COMPILED", "0") == "1"
# The tests keep XLA's default reductions: the entry points' YNNPACK flag
# (xlstm_jax/cpu_setup.py, a CPU speed setting) sums float32 in another order, and the
# interpreted Pallas mLSTM's d log f at +-30 gates is then 1.6e-5 off, not <= 6e-6
# (test_pallas_mlstm.py::test_extreme_gates_float32_precision). Subprocess tests of the
# entry points (test_cli.py, test_cpu_setup.py) run with the flag.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
if not PALLAS_COMPILED:
  os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

if PALLAS_COMPILED:
  jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def x64():
  """Runs a test with float64 enabled: the forms' algebra is checked to ~1e-10 there."""
  with jax.enable_x64(True):
    yield
