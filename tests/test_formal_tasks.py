"""Formal-language tasks: layout, determinism, hand-checked answers, chance levels (CPU, fast)."""

import numpy as np
import pytest

from xlstm_jax.tasks import base
from xlstm_jax.tasks.formal import BLANK, FORMAL_TASKS, SEP, formal_task

NAMES = sorted(FORMAL_TASKS)
PAPER = {"parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "majority",
         "bucket_sort", "repetition"}
ONE_TOKEN = {"parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "majority",
             "missing_duplicate"}
LENGTHS = list(range(1, 61)) + [100, 255, 256]


def _examples(task, seed: int, n: int, lo: int = 3, hi: int = 40):
  rng = np.random.default_rng(seed)
  return [task.example(rng, int(rng.integers(lo, hi + 1))) for _ in range(n)]


def test_registry():
  assert PAPER <= set(NAMES)
  for name in NAMES:
    task = formal_task(name)
    assert task.name == name and task is FORMAL_TASKS[name]
    assert isinstance(task.vocab_size, int) and callable(task.example)
  with pytest.raises(ValueError, match="parity") as err:
    formal_task("palindrome")
  assert "palindrome" in str(err.value) and "bucket_sort" in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_vocab_is_documented(name):
  task = FORMAL_TASKS[name]
  assert task.vocab[:3] == ("PAD", "SEP", "BLANK") and (SEP, BLANK) == (1, 2)
  assert len(set(task.vocab)) == task.vocab_size
  assert "Vocab: " + " ".join(task.vocab) + "." in " ".join(type(task).__doc__.split())


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(name):
  task = FORMAL_TASKS[name]
  a, b, c = (_examples(task, s, 20) for s in (7, 7, 8))
  for x, y in zip(a, b):
    assert all(np.array_equal(x[k], y[k]) for k in x)
  assert any(len(x["inputs"]) != len(z["inputs"]) or not np.array_equal(x["inputs"], z["inputs"])
             for x, z in zip(a, c))


@pytest.mark.parametrize("name", NAMES)
def test_examples_follow_the_interface(name):
  task = FORMAL_TASKS[name]
  rng = np.random.default_rng(0)
  for length in LENGTHS:
    for _ in range(3):
      ex = task.example(rng, length)
      base.check_example(task, ex)
      symbols, ans = task.decode(ex)
      n_in, k = len(symbols), len(ans)
      if name == "modular_arithmetic":
        assert n_in == length - (length % 2 == 0)
      elif name == "missing_duplicate":
        assert n_in == max(2, length - length % 2)
      else:
        assert n_in == length
      # input symbols, SEP, k - 1 BLANKs; scored exactly at the k answer positions
      assert ex["inputs"][n_in] == SEP and (ex["inputs"][n_in + 1:] == BLANK).all()
      assert not np.isin(ex["inputs"][:n_in], [base.PAD, SEP, BLANK]).any()
      assert (ex["targets"][:n_in] == base.PAD).all()
      assert ex["mask"].tolist() == [False] * n_in + [True] * k
      assert k == (1 if name in ONE_TOKEN else 2 * n_in if name == "repetition" else n_in)
  with pytest.raises(ValueError, match="length"):
    task.example(rng, 0)


@pytest.mark.parametrize("name", NAMES)
def test_example_decodes_to_its_answer(name):
  task = FORMAL_TASKS[name]
  for ex in _examples(task, 1, 300, 1, 64):
    symbols, ans = task.decode(ex)
    assert ans == task.answer(symbols)
    assert set(symbols) <= set(task.symbols) and set(ans) <= set(task.answer_symbols)


HAND = {  # name -> [(input symbols, answer)], worked out by hand
    "parity": [("abba", "even"), ("b", "odd"), ("aaa", "even"), ("babab", "odd")],
    "even_pairs": [("abba", "even"), ("ab", "odd"), ("a", "even"), ("aabab", "odd"),
                   ("babab", "even")],
    "cycle_navigation": [(["+1", "+1", "-1", "0"], "q1"), (["-1"], "q4"), (["0"], "q0"),
                         (["+1"] * 7, "q2"), (["-1", "-1", "-1", "+1"], "q3")],
    "modular_arithmetic": [("3+4*2", "1"), ("2-3*4", "0"), ("4*4-1", "0"), ("1-2-3", "1"),
                           ("2*3*4+1", "0"), ("3", "3"), ("4-2*2+3*3*3", "2")],
    "majority": [("abcab", "a"), ("ccb", "c"), ("eedd", "d"), ("edcba", "a"), ("e", "e"),
                 ("daedd", "d")],
    "reverse_string": [("aab", "baa"), ("b", "b"), ("abab", "baba")],
    "bucket_sort": [("dbeab", "abbde"), ("e", "e"), ("ccaa", "aacc"), ("edcba", "abcde")],
    "repetition": [("ab", "abab"), ("b", "bb"), ("aab", "aabaab")],
    "odds_first": [("aaabaa", "aaaaba"), ("ab", "ab"), ("abbab", "abbba"), ("b", "b")],
    "missing_duplicate": [("ab_b", "a"), ("_b", "b"), ("abb_bb", "a"), ("ba_bab", "b")],
}


@pytest.mark.parametrize("name", NAMES)
def test_hand_checked_answers(name):
  task = FORMAL_TASKS[name]
  for symbols, expected in HAND[name]:
    want = (expected,) if name in ONE_TOKEN else tuple(expected)
    assert task.answer(symbols) == want, symbols
  with pytest.raises(ValueError, match="alphabet"):
    task.answer(["z"])


def test_modular_arithmetic_matches_python_precedence():
  task = FORMAL_TASKS["modular_arithmetic"]
  for ex in _examples(task, 2, 500, 1, 41):
    symbols, (ans,) = task.decode(ex)
    assert int(ans) == eval("".join(symbols)) % 5  # noqa: S307 -- digits and + - * only
  for bad in ("3+", "+3", "34", ""):
    with pytest.raises(ValueError):
      task.answer(bad)


def test_even_pairs_is_first_equals_last():
  task = FORMAL_TASKS["even_pairs"]
  for ex in _examples(task, 3, 300, 1, 40):
    symbols, (ans,) = task.decode(ex)
    assert (ans == "even") == (symbols[0] == symbols[-1])


@pytest.mark.parametrize("name", NAMES)
def test_scaled_accuracy_of_oracle_and_random_guess(name):
  task = FORMAL_TASKS[name]
  exs = _examples(task, 4, 3000)
  chance = task.chance_accuracy(20)
  assert chance == 1.0 / len(task.answer_symbols)
  answer_ids = np.asarray([task.vocab.index(a) for a in task.answer_symbols])
  rng = np.random.default_rng(5)
  hits = []
  for ex in exs:
    targets = ex["targets"][ex["mask"]]
    guess = rng.choice(answer_ids, size=len(targets))
    hits.append(guess == targets)
  # the oracle reads only the inputs (symbols before SEP) and answers at the scored positions
  oracle_hits = []
  for ex in exs:
    n_in = int(np.argmax(ex["inputs"] == SEP))
    symbols = [task.vocab[i] for i in ex["inputs"][:n_in]]
    pred = np.asarray([task.vocab.index(a) for a in task.answer(symbols)])
    oracle_hits.append(pred == ex["targets"][ex["mask"]])
  oracle = float(np.concatenate(oracle_hits).mean())
  assert base.scaled_accuracy(oracle, chance) == 1.0
  hits = np.concatenate(hits)
  # 4 standard deviations of the scaled accuracy of len(hits) independent guesses
  tol = 4 * np.sqrt(chance * (1 - chance) / len(hits)) / (1 - chance)
  assert abs(base.scaled_accuracy(float(hits.mean()), chance)) < tol, (hits.mean(), tol)


@pytest.mark.parametrize("name", NAMES)
def test_every_answer_symbol_occurs(name):
  task = FORMAL_TASKS[name]
  seen = set()
  for ex in _examples(task, 6, 400):
    seen.update(task.decode(ex)[1])
  assert seen == set(task.answer_symbols)


def test_majority_class_balance_is_not_degenerate():
  task = FORMAL_TASKS["majority"]
  answers = [task.decode(ex)[1][0] for ex in _examples(task, 9, 1000)]
  counts = np.asarray([answers.count(s) for s in task.answer_symbols])
  assert counts.min() > 50, counts  # ties favour 'a', but every symbol still wins often
