"""Tests of the recall tasks (MQAR, revision) against the Task interface of base.py."""

import numpy as np
import pytest

from xlstm_jax.tasks import base
from xlstm_jax.tasks.recall import MQAR, RECALL_TASKS, Revision, recall_task

TASKS = [MQAR(), MQAR(num_pairs=4, num_keys=4, num_values=3), MQAR(num_queries=3),
         MQAR(num_pairs=5, random_fill=True), Revision(),
         Revision(num_items=2, num_importances=2)]


def _length(task, scale):
  return task.min_length() + scale if isinstance(task, MQAR) else 1 + scale


def _equal(a, b):
  return all(np.array_equal(a[k], b[k]) for k in ("inputs", "targets", "mask"))


def decode_mqar(task, inputs):
  """Independent answer key: the latest value read after each key, at later key positions."""
  first_value = 2 + task.num_keys
  targets, mask, store = np.zeros_like(inputs), np.zeros(len(inputs), bool), {}
  for t, tok in enumerate(inputs):
    is_key = 2 <= tok < first_value
    if is_key and tok in store:
      targets[t], mask[t] = store[tok], True
    elif t < 2 * task.num_pairs and t % 2 == 1 and tok >= first_value:
      store[inputs[t - 1]] = tok
  return targets, mask


def decode_revision(task, inputs):
  """Independent answer key: a running (level, item), replaced on >= (latest wins)."""
  best_level, best_item = -1, None
  for t in range(0, len(inputs) - 1, 2):
    if inputs[t] - 2 >= best_level:
      best_level, best_item = inputs[t] - 2, inputs[t + 1]
  targets = np.zeros_like(inputs)
  targets[-1] = best_item
  mask = np.zeros(len(inputs), bool)
  mask[-1] = True
  return targets, mask


@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_deterministic_and_seed_dependent(task):
  L = _length(task, 20)
  a = task.example(np.random.default_rng(7), L)
  b = task.example(np.random.default_rng(7), L)
  c = task.example(np.random.default_rng(8), L)
  assert _equal(a, b)
  assert not _equal(a, c)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_examples_pass_interface_and_decode(task):
  rng = np.random.default_rng(0)
  decode = decode_mqar if isinstance(task, MQAR) else decode_revision
  for scale in (0, 1, 3, 17, 60):
    L = _length(task, scale)
    for _ in range(20):
      ex = task.example(rng, L)
      base.check_example(task, ex)
      n = L if isinstance(task, MQAR) else 2 * L + 1
      assert len(ex["inputs"]) == n
      targets, mask = decode(task, ex["inputs"])
      np.testing.assert_array_equal(ex["mask"], mask)
      np.testing.assert_array_equal(ex["targets"], np.where(mask, targets, base.PAD))
      if isinstance(task, MQAR):
        assert ex["mask"].sum() == task.queries
        assert not ex["mask"][: 2 * task.num_pairs].any()


def test_mqar_hand_checked():
  task = MQAR(num_pairs=2, num_keys=4, num_values=4)
  k, v = task.key_id, task.value_id
  ex = task.build([(1, 3), (2, 1)], [(5, 2), (7, 1)], length=8)
  F = MQAR.FILL
  np.testing.assert_array_equal(ex["inputs"], [k(1), v(3), k(2), v(1), F, k(2), F, k(1)])
  np.testing.assert_array_equal(ex["targets"], [0, 0, 0, 0, 0, v(1), 0, v(3)])
  np.testing.assert_array_equal(ex["mask"], [0, 0, 0, 0, 0, 1, 0, 1])
  assert task.vocab_size == 10 and (k(0), v(0)) == (2, 6)


def test_mqar_layout_and_random_fill():
  task = MQAR(num_pairs=6, num_keys=8, num_values=5, random_fill=True)
  ex = task.example(np.random.default_rng(3), 40)
  keys = ex["inputs"][0:12:2]
  assert len(set(keys.tolist())) == 6 and (keys < 2 + task.num_keys).all()
  assert (ex["inputs"][1:12:2] >= 2 + task.num_keys).all()
  rest = ex["inputs"][12:]
  is_key = rest < 2 + task.num_keys
  assert sorted(rest[is_key].tolist()) == sorted(keys.tolist())   # every key queried once
  assert (rest[~is_key] >= 2 + task.num_keys).all()                 # fill: values only
  plain = MQAR(num_pairs=6, num_keys=8, num_values=5).example(np.random.default_rng(3), 40)
  assert set(plain["inputs"][12:][~plain["mask"][12:]].tolist()) == {MQAR.FILL}


def test_revision_hand_checked():
  task = Revision(num_items=5, num_importances=4)
  ex = task.build([1, 3, 2], [4, 0, 2])
  i, x, Q = task.importance_id, task.item_id, Revision.QUERY
  np.testing.assert_array_equal(ex["inputs"], [i(1), x(4), i(3), x(0), i(2), x(2), Q])
  np.testing.assert_array_equal(ex["targets"], [0, 0, 0, 0, 0, 0, x(0)])
  np.testing.assert_array_equal(ex["mask"], [0, 0, 0, 0, 0, 0, 1])
  tie = task.build([3, 1, 3, 0], [1, 2, 3, 4])     # two items at the top level: latest wins
  assert tie["targets"][-1] == x(3)
  assert task.vocab_size == 11


def test_revision_generated_top_is_unique():
  task = Revision(num_items=4, num_importances=3)
  rng = np.random.default_rng(1)
  for L in (2, 5, 50):
    for _ in range(50):
      levels = task.example(rng, L)["inputs"][0:-1:2]
      assert (levels == levels.max()).sum() == 1


def test_revision_answer_position_is_spread():
  task = Revision(num_items=8, num_importances=8)
  rng = np.random.default_rng(2)
  L, N = 32, 2000
  pos = np.array([np.argmax(task.example(rng, L)["inputs"][0:-1:2]) for _ in range(N)])
  hist = np.bincount(pos * 4 // L, minlength=4) / N    # quarters of the stream
  np.testing.assert_allclose(hist, 0.25, atol=0.05)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_scaled_accuracy_oracle_and_uniform_guess(task):
  rng = np.random.default_rng(4)
  L = _length(task, 12)
  answers = (task.value_id(0) if isinstance(task, MQAR) else task.item_id(0)) + np.arange(
      task.num_values if isinstance(task, MQAR) else task.num_items)
  oracle, guess = [], []
  for _ in range(3000 // (task.queries if isinstance(task, MQAR) else 1)):
    ex = task.example(rng, L)
    y = ex["targets"][ex["mask"]]
    oracle.extend(y == y)
    guess.extend(rng.choice(answers, len(y)) == y)
  chance = task.chance_accuracy(L)
  assert base.scaled_accuracy(np.mean(oracle), chance) == 1.0
  assert abs(base.scaled_accuracy(np.mean(guess), chance)) < 0.05


def test_registry():
  assert RECALL_TASKS == {"mqar": MQAR, "revision": Revision}
  assert recall_task("mqar", num_pairs=3) == MQAR(num_pairs=3)
  assert recall_task("revision").name == "revision"
  with pytest.raises(ValueError, match=r"'copy'.*\['mqar', 'revision'\]"):
    recall_task("copy")


@pytest.mark.parametrize("make, match", [
    (lambda: MQAR(num_pairs=8).example(np.random.default_rng(0), 23), r"length=23.*num_pairs=8"),
    (lambda: MQAR(num_pairs=9, num_keys=8), r"num_pairs=9.*num_keys=8"),
    (lambda: MQAR(num_pairs=0), r"num_pairs=0"),
    (lambda: MQAR(num_values=1), r"num_values=1"),
    (lambda: MQAR(num_pairs=4, num_queries=5), r"num_queries=5"),
    (lambda: MQAR(num_queries=0), r"num_queries=0"),
    (lambda: MQAR(num_pairs=2).build([(1, 0), (1, 2)], [], 6), r"keys=\[1, 1\]"),
    (lambda: MQAR(num_pairs=2).build([(1, 0), (2, 2)], [(3, 1)], 6), r"pos=3"),
    (lambda: MQAR(num_pairs=2).build([(1, 0), (2, 2)], [(4, 5)], 6), r"k=5"),
    (lambda: MQAR(num_pairs=2, num_keys=4).key_id(4), r"k=4"),
    (lambda: Revision().example(np.random.default_rng(0), 0), r"length=0"),
    (lambda: Revision(num_items=1), r"num_items=1"),
    (lambda: Revision(num_importances=1), r"num_importances=1"),
    (lambda: Revision(num_importances=3).build([3], [0]), r"level=3"),
    (lambda: Revision().build([1, 2], [0]), r"len\(items\)=1"),
])
def test_bad_parameters_raise(make, match):
  with pytest.raises(ValueError, match=match):
    make()
