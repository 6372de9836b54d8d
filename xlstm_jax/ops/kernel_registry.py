"""Where the op dispatchers find their accelerator kernels: kernels plug into ops.

A kernel package registers its entry point when it is imported; the ops never import a
kernel package at module level, so `import xlstm_jax.ops` stays light (jax and numpy)
and there is no import cycle (kernels import ops' public algebra, never the reverse).

The pattern, for a kernel called "<op>_<form>" living in `pallas_kernels/<pkg>/`:
  1. In the kernel package's `__init__.py`, after defining the op:
       kernel_registry.register("slstm_fused", slstm_fused_pallas, supports=_supports)
     `supports(**shape)` gets the keyword arguments the dispatcher passes (head dims,
     chunk, dtype, ...) and returns None when the kernel runs them, else a sentence
     saying why not (it names the value and the constraint).
  2. Add the name and its module to `PROVIDERS` below, so that a lookup imports the
     module on first request (importlib, by name: no static import edge).
  3. In the dispatcher (`ops/<op>.py`):
       reason = kernel_registry.unsupported("slstm_fused", D=..., dtype=...)
     backend="pallas" raises ValueError(reason) when it is not None; backend="auto"
     falls back to the jnp form instead, so auto never picks a kernel that refuses a
     shape. Then call `kernel_registry.get("slstm_fused").fn(...)`.
Tests may register a stand-in under a new name with `register` (and `unregister` it).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

# Kernel name -> the module whose import registers it.
PROVIDERS = {
    "mlstm_chunkwise": "pallas_kernels.mlstm_chunkwise",
    "slstm_fused": "pallas_kernels.slstm",
}


@dataclasses.dataclass(frozen=True)
class Kernel:
  """A registered kernel: its entry point and its shape check (None = runs it)."""

  name: str
  fn: Callable
  supports: Callable[..., str | None]


_KERNELS: dict[str, Kernel] = {}


def register(name: str, fn: Callable, supports: Callable[..., str | None]) -> Kernel:
  """Registers (or replaces, on a module reload) the kernel `name`."""
  if not callable(fn) or not callable(supports):
    raise TypeError(f"kernel {name!r}: fn={fn!r} and supports={supports!r} must be callable")
  kernel = Kernel(name, fn, supports)
  _KERNELS[name] = kernel
  return kernel


def unregister(name: str) -> None:
  """Removes a kernel (tests' stand-ins); its provider module re-registers on reload."""
  _KERNELS.pop(name, None)


def get(name: str) -> Kernel:
  """The kernel `name`, importing its provider module on first request. LookupError
  names the kernel, the module tried and why it failed."""
  if name not in _KERNELS:
    module = PROVIDERS.get(name)
    if module is None:
      raise LookupError(f"kernel {name!r} is not registered and has no provider; "
                        f"known: {sorted(set(PROVIDERS) | set(_KERNELS))}")
    try:
      importlib.import_module(module)
    except ImportError as err:
      raise LookupError(f"kernel {name!r}: importing {module!r} failed: {err}") from err
    if name not in _KERNELS:
      raise LookupError(f"kernel {name!r}: {module!r} was imported but did not register it")
  return _KERNELS[name]


def unsupported(name: str, **shape) -> str | None:
  """None when the kernel `name` is available and runs this shape, else the reason (a
  kernel that cannot be imported is unsupported everywhere)."""
  try:
    kernel = get(name)
  except LookupError as err:
    return str(err)
  return kernel.supports(**shape)


def registered() -> tuple[str, ...]:
  """Names of the kernels registered so far (providers not yet imported are absent)."""
  return tuple(sorted(_KERNELS))
