"""Evaluation code against models whose outputs are known: oracle, chance, uniform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_task_source import FirstSymbol
from xlstm_jax import presets, sharding
from xlstm_jax.data import PackedArrays, make_dataset, pack
from xlstm_jax.evaluation import length_accuracy
from xlstm_jax.nn import LanguageModel, init_params
from xlstm_jax.training.evaluate import evaluate, make_eval_loss


def _oracle(inputs):
  """FirstSymbol's answer is inputs[:, 0]: one-hot logits of it at every position."""
  return jax.nn.one_hot(np.repeat(inputs[:, :1], inputs.shape[1], 1), FirstSymbol.vocab_size)


def test_oracle_scores_one_and_chance_scores_zero():
  task = FirstSymbol()
  oracle = length_accuracy(_oracle, task, range(5, 30), examples=16, pad_to=16)
  assert oracle["scaled_accuracy"] == 1.0 and oracle["accuracy"] == 1.0
  assert sorted(oracle["per_length"]) == list(range(5, 30))
  rng = np.random.default_rng(0)
  guess = lambda x: rng.random((*x.shape, task.vocab_size)) * np.isin(  # noqa: E731
      np.arange(task.vocab_size), [2, 3, 4, 5])  # uniform among the 4 answer symbols
  chance = length_accuracy(guess, task, range(5, 45), examples=64)
  assert abs(chance["scaled_accuracy"]) < 0.05  # 2560 answers: sd of the scaled mean ~0.011
  assert chance["per_length"][5]["scaled_accuracy"] == pytest.approx(
      (chance["per_length"][5]["accuracy"] - 0.25) / 0.75)


def test_examples_are_fixed_by_seed_and_padding_is_invisible():
  task = FirstSymbol()
  seen = []
  record = lambda x: seen.append(np.asarray(x)) or _oracle(x)  # noqa: E731
  length_accuracy(record, task, [7], examples=4, seed=3, pad_to=8)
  length_accuracy(record, task, [7], examples=4, seed=3, pad_to=32)
  assert seen[0].shape == (4, 8) and seen[1].shape == (4, 32)
  np.testing.assert_array_equal(seen[0], seen[1][:, :8])
  with pytest.raises(ValueError, match="at least one length"):
    length_accuracy(_oracle, task, [], examples=4)


def test_uniform_model_has_perplexity_equal_to_the_vocabulary():
  """A real model whose LM head is zero outputs uniform logits: perplexity = V exactly, and
  accuracy = the share of targets equal to id 0 (argmax of equal logits)."""
  V = 257
  cfg = presets.model_config("xlstm_tiny", vocab_size=V)
  model = LanguageModel(cfg)
  params = init_params(model, jax.random.key(0))
  params["lm_head"]["kernel"] = jnp.zeros_like(params["lm_head"]["kernel"])
  docs = [list(np.random.default_rng(i).integers(0, 3, 300)) for i in range(4)]
  examples = pack(docs, 32, eos_id=256)
  ds = make_dataset(PackedArrays(examples), batch_size=4, shuffle=False, num_epochs=1)
  mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])
  result = evaluate(make_eval_loss(model), params, ds, mesh)
  assert result["eval_perplexity"] == pytest.approx(V, rel=1e-5)
  used = examples["targets"][: 4 * result["eval_batches"]]
  assert result["eval_accuracy"] == pytest.approx(float((used == 0).mean()), rel=1e-6)
