"""The Pallas APIs this repository uses that differ between the jax versions it supports.

CI and the CPU machines run jax 0.10.2; the GPU machines run jax 0.11.x. What moved:

- jax 0.11 deprecates Pallas's Triton lowering (a `DeprecationWarning` per lowering,
  "The Pallas Triton backend is deprecated"); it still lowers and runs. The kernels here
  keep the Triton lowering on GPU (the Mosaic GPU lane mode of 0.10.2 lacks the
  transposes they need), so the warning is expected and filtered once, here.
- Both versions spell the compiler parameters `pltriton.CompilerParams` and
  `pltpu.CompilerParams` (the older `TritonCompilerParams` / `TPUCompilerParams` were
  removed in 0.8.1), and both lower a float32 `dot` with `Precision.DEFAULT` to TF32 on
  GPU: `matmul_precision` says which precision keeps float32 kernels in float32.

Everything version-dependent goes through this module, so a later jax needs one edit.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

JAX_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:3] if p.isdigit())

warnings.filterwarnings("ignore", message="The Pallas Triton backend is deprecated",
                        category=DeprecationWarning)


def triton_compiler_params(num_warps: int, num_stages: int):
  """Triton compiler parameters; passing them picks the Triton lowering on GPU."""
  from jax.experimental.pallas import triton as pltriton  # noqa: PLC0415 (GPU-only module)
  return pltriton.CompilerParams(num_warps=num_warps, num_stages=num_stages)


def tpu_compiler_params(dimension_semantics: tuple[str, ...]):
  """Mosaic TPU compiler parameters for a grid with these axis semantics."""
  from jax.experimental.pallas import tpu as pltpu  # noqa: PLC0415
  return pltpu.CompilerParams(dimension_semantics=dimension_semantics)


def triton_custom_call_target() -> str:
  """The custom-call name a Pallas Triton kernel lowers to (exported as
  `pltriton.CUSTOM_CALL_TARGET_NAME` from jax 0.11; the same string in 0.10.2)."""
  from jax.experimental.pallas import triton as pltriton  # noqa: PLC0415
  return getattr(pltriton, "CUSTOM_CALL_TARGET_NAME", "__gpu$xla.gpu.triton")


def matmul_precision(dtype) -> jax.lax.Precision:
  """The dot precision for matmul inputs of `dtype`: HIGHEST for float32 (Triton lowers
  DEFAULT to TF32, a 10-bit mantissa, which would break the float32 agreement the tests
  check), DEFAULT for bfloat16/float16 inputs (already at their precision)."""
  return (jax.lax.Precision.HIGHEST if jnp.dtype(dtype) in (jnp.float32, jnp.float64)
          else jax.lax.Precision.DEFAULT)
