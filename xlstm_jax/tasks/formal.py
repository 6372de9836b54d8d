"""Formal-language tasks of the xLSTM paper (Sec. 4.1, App. B.1), after Delétang et al. 2023.

Each task maps an input string to an answer string. The example layout (see base.py):

  inputs   s_1 .. s_L  SEP  BLANK .. BLANK      (k - 1 BLANKs for a k-token answer)
  targets  PAD .. PAD  y_1  y_2   .. y_k
  mask     F   .. F    T    T     .. T

so the model emits the whole answer from the SEP position on, never reading its own
previous answer tokens (non-autoregressive, as in Delétang et al.). Each task has its own
small vocabulary: PAD, SEP, BLANK, the input symbols, then the answer symbols that are not
input symbols; it is listed in every class docstring (and checked by the tests).

`answer(symbols)` computes the answer, as symbol names, of a sequence of input symbol
names; `example` samples the input and calls it, and `decode` reads both back.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from xlstm_jax.tasks.base import PAD, Task

SEP, BLANK = 1, 2
_SPECIAL = ("PAD", "SEP", "BLANK")
_BINARY = ("a", "b")
_FIVE = ("a", "b", "c", "d", "e")


class FormalTask(abc.ABC):
  """Common encoding; a subclass sets `name`, `symbols`, `answer_symbols`, `answer`."""

  name: str = ""
  symbols: tuple[str, ...] = ()          # input alphabet, in id order
  answer_symbols: tuple[str, ...] = ()   # possible answer tokens, in id order

  def __init__(self):
    extra = tuple(a for a in self.answer_symbols if a not in self.symbols)
    self.vocab = _SPECIAL + self.symbols + extra
    self.vocab_size = len(self.vocab)
    self._ids = {s: i for i, s in enumerate(self.vocab)}
    assert self._ids["PAD"] == PAD and len(self._ids) == self.vocab_size, self.vocab

  @abc.abstractmethod
  def answer(self, symbols: Sequence[str]) -> tuple[str, ...]:
    """The answer string (names from `answer_symbols`) of the input `symbols`."""

  def sample(self, rng: np.random.Generator, length: int) -> list[str]:
    """A random input string; uniform over the alphabet unless a task says otherwise."""
    return [self.symbols[i] for i in rng.integers(len(self.symbols), size=length)]

  def example(self, rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    """One example whose input string has `length` symbols (see base.py)."""
    if length < 1:
      raise ValueError(f"{self.name}: {length=} must be >= 1")
    symbols = self.sample(rng, length)
    ans = self.answer(symbols)
    n_in, k = len(symbols), len(ans)
    inputs = [self._ids[s] for s in symbols] + [SEP] + [BLANK] * (k - 1)
    targets = [PAD] * n_in + [self._ids[a] for a in ans]
    mask = np.arange(n_in + k) >= n_in
    return {"inputs": np.asarray(inputs, np.int32), "targets": np.asarray(targets, np.int32),
            "mask": mask}

  def decode(self, ex: dict[str, np.ndarray]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input symbols, answer symbols) of an example, read back from its ids."""
    n_in = int(np.argmax(ex["inputs"] == SEP))
    symbols = tuple(self.vocab[i] for i in ex["inputs"][:n_in])
    return symbols, tuple(self.vocab[i] for i in ex["targets"][ex["mask"]])

  def chance_accuracy(self, length: int) -> float:
    """Uniform guess among the answer symbols, at every scored position."""
    del length
    return 1.0 / len(self.answer_symbols)

  def __repr__(self) -> str:
    return f"{type(self).__name__}(vocab={self.vocab})"


def _check(task: FormalTask, symbols: Sequence[str]) -> None:
  bad = [s for s in symbols if s not in task.symbols]
  if bad:
    raise ValueError(f"{task.name}: symbols {bad} not in the alphabet {task.symbols}")


# --- regular ----------------------------------------------------------------------------

class Parity(FormalTask):
  """Is the number of b's even? Vocab: PAD SEP BLANK a b even odd. Chance 1/2."""

  name, symbols, answer_symbols = "parity", _BINARY, ("even", "odd")

  def answer(self, symbols):
    _check(self, symbols)
    return (self.answer_symbols[list(symbols).count("b") % 2],)


class EvenPairs(FormalTask):
  """Is the number of 'ab' plus 'ba' pairs even (iff first == last symbol)?

  Vocab: PAD SEP BLANK a b even odd. Chance 1/2.
  """

  name, symbols, answer_symbols = "even_pairs", _BINARY, ("even", "odd")

  def answer(self, symbols):
    _check(self, symbols)
    changes = sum(x != y for x, y in zip(symbols, symbols[1:]))
    return (self.answer_symbols[changes % 2],)


class CycleNavigation(FormalTask):
  """Moves +1 / -1 / 0 on a cycle of 5 states from q0; the answer is the final state.

  Vocab: PAD SEP BLANK +1 -1 0 q0 q1 q2 q3 q4. Chance 1/5.
  """

  name, symbols = "cycle_navigation", ("+1", "-1", "0")
  answer_symbols = ("q0", "q1", "q2", "q3", "q4")

  def answer(self, symbols):
    _check(self, symbols)
    return (self.answer_symbols[sum(int(s) for s in symbols) % 5],)


class ModularArithmetic(FormalTask):
  """Numbers 0..4 alternating with + - *, evaluated mod 5 with * before + and -.

  Delétang's "modular arithmetic (simple)": an expression has an odd number of symbols, so
  an even `length` gives `length - 1` symbols. '-' is binary and left-associative
  ("1-2-3" = -4 = 1 mod 5). Answers share the digits' ids.
  Vocab: PAD SEP BLANK 0 1 2 3 4 + - *. Chance 1/5.
  """

  name = "modular_arithmetic"
  symbols = ("0", "1", "2", "3", "4", "+", "-", "*")
  answer_symbols = ("0", "1", "2", "3", "4")

  def sample(self, rng, length):
    n = length if length % 2 else length - 1
    nums = rng.integers(5, size=(n + 1) // 2)
    ops = rng.integers(3, size=n // 2)
    out = [str(nums[0])]
    for op, num in zip(ops, nums[1:]):
      out += ["+-*"[op], str(num)]
    return out

  def answer(self, symbols):
    _check(self, symbols)
    nums, ops = symbols[0::2], symbols[1::2]
    if len(symbols) % 2 == 0 or any(s not in "01234" for s in nums) or any(
        o not in "+-*" for o in ops):
      raise ValueError(f"{self.name}: {''.join(symbols)!r} is not a number-operator string")
    total, sign, term = 0, 1, int(nums[0])
    for op, num in zip(ops, nums[1:]):
      if op == "*":
        term = term * int(num) % 5
      else:  # a product ends: add it and start the next one
        total, sign, term = total + sign * term, 1 if op == "+" else -1, int(num)
    return (str((total + sign * term) % 5),)


# --- context-free -----------------------------------------------------------------------

class Majority(FormalTask):
  """The most frequent of 5 symbols; a tie goes to the earliest symbol in a..e.

  Vocab: PAD SEP BLANK a b c d e. Chance 1/5.
  """

  name, symbols, answer_symbols = "majority", _FIVE, _FIVE

  def answer(self, symbols):
    _check(self, symbols)
    counts = [list(symbols).count(s) for s in self.symbols]
    return (self.symbols[int(np.argmax(counts))],)  # argmax: first of the tied maxima


class ReverseString(FormalTask):
  """The binary string reversed (`length` answer tokens). Vocab: PAD SEP BLANK a b. Chance 1/2."""

  name, symbols, answer_symbols = "reverse_string", _BINARY, _BINARY

  def answer(self, symbols):
    _check(self, symbols)
    return tuple(symbols[::-1])


# --- context-sensitive ------------------------------------------------------------------

class BucketSort(FormalTask):
  """The string over 5 symbols, sorted a < .. < e (`length` answer tokens).

  Vocab: PAD SEP BLANK a b c d e. Chance 1/5.
  """

  name, symbols, answer_symbols = "bucket_sort", _FIVE, _FIVE

  def answer(self, symbols):
    _check(self, symbols)
    return tuple(sorted(symbols, key=self.symbols.index))


class Repetition(FormalTask):
  """Delétang's "duplicate string": the binary string twice (2 * `length` answer tokens).

  Vocab: PAD SEP BLANK a b. Chance 1/2.
  """

  name, symbols, answer_symbols = "repetition", _BINARY, _BINARY

  def answer(self, symbols):
    _check(self, symbols)
    return tuple(symbols) * 2


class OddsFirst(FormalTask):
  """The binary string's symbols at odd positions (1st, 3rd, ..), then at even positions.

  `length` answer tokens. Vocab: PAD SEP BLANK a b. Chance 1/2.
  """

  name, symbols, answer_symbols = "odds_first", _BINARY, _BINARY

  def answer(self, symbols):
    _check(self, symbols)
    return tuple(symbols[0::2]) + tuple(symbols[1::2])


class MissingDuplicate(FormalTask):
  """A binary string w w with one symbol replaced by '_'; the answer is that symbol.

  w has max(1, `length` // 2) symbols, so the input has 2 * len(w) symbols (an odd
  `length` gives `length - 1`, and 1 gives 2). Vocab: PAD SEP BLANK a b _. Chance 1/2.
  """

  name, symbols, answer_symbols = "missing_duplicate", _BINARY + ("_",), _BINARY

  def sample(self, rng, length):
    half = max(1, length // 2)
    w = [_BINARY[i] for i in rng.integers(2, size=half)]
    out = w + w
    out[int(rng.integers(2 * half))] = "_"
    return out

  def answer(self, symbols):
    _check(self, symbols)
    half = len(symbols) // 2
    if len(symbols) % 2 or list(symbols).count("_") != 1:
      raise ValueError(f"{self.name}: {''.join(symbols)!r} needs even length and one '_'")
    i = list(symbols).index("_")
    return (symbols[(i + half) % (2 * half)],)


# --- registry ---------------------------------------------------------------------------

FORMAL_TASKS: dict[str, Task] = {t.name: t for t in (
    Parity(), EvenPairs(), CycleNavigation(), ModularArithmetic(), Majority(),
    ReverseString(), BucketSort(), Repetition(), OddsFirst(), MissingDuplicate())}


def formal_task(name: str) -> Task:
  """The formal-language task called `name` (a key of FORMAL_TASKS)."""
  if name not in FORMAL_TASKS:
    raise ValueError(f"unknown formal task {name!r}; known: {sorted(FORMAL_TASKS)}")
  return FORMAL_TASKS[name]
