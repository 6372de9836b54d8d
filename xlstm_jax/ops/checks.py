"""Shape and dtype checks at the public op boundaries, on chex assertions.

chex raises AssertionError with the position of the bad array; the ops raise ValueError
naming the argument and what was expected (the project's convention, pinned by
tests/test_errors.py), with chex's detail chained as the cause.
"""

from __future__ import annotations

from typing import Any, Callable


def expect(assertion: Callable[..., Any], *args, message: str, **kwargs) -> None:
  """Runs `assertion(*args, **kwargs)` (a chex assertion); its failure becomes
  ValueError(message), where the message names the argument and the expectation."""
  try:
    assertion(*args, **kwargs)
  except AssertionError as err:
    raise ValueError(message) from err
