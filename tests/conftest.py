"""Test setup: 8 simulated CPU devices, set before jax is imported anywhere.

`XLSTM_PALLAS_COMPILED=1` runs the tests on the machine's accelerator instead of the CPU,
so the Pallas kernels (whose `interpret=None` default interprets on CPU only) run compiled
for the hardware: `XLSTM_PALLAS_COMPILED=1 python -m pytest tests/test_pallas_mlstm.py`
on a GPU (the GPU suite's second part). Float32 matmuls outside the kernels then run at
full precision too (`jax_default_matmul_precision=highest`; GPUs default to TF32), so the
references keep the precision the tolerances assume.
"""

import os
import shutil
import tempfile

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

# The entry points the tests start as subprocesses (train.py, eval.py, the paper runner,
# the notebooks' kernels) share one persistent compilation cache for the session: most of
# them train the same small model, and without it each paid ~25 s of XLA:CPU compilation
# for the same train and init steps. The tests' own process keeps compiling as before
# (test_mlstm_forms.py counts its compilations): the cache is turned off in it explicitly,
# since an xdist worker already finds the variable when it imports jax. The cache is keyed on
# the program, the XLA flags and the jax version, so a hit runs what a compile would give.
# The first process to load this file (xdist's controller) makes the directory; the
# workers inherit it through the environment, and the controller removes it at the end.
CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWN_CACHE = None
if CACHE_ENV not in os.environ:
  _OWN_CACHE = os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="xlstm-jax-test-cache-")
jax.config.update("jax_compilation_cache_dir", None)


def pytest_unconfigure(config):
  if _OWN_CACHE is not None:
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def x64():
  """Runs a test with float64 enabled: the forms' algebra is checked to ~1e-10 there."""
  with jax.enable_x64(True):
    yield
