"""The one sharding table: specs from logical names, activation constraints, divisibility
errors, and the padded vocabulary (masked out of the loss and of sampling, stripped on export).
Runs on the 8 simulated CPU devices of conftest."""

import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from test_train_entry import metrics, train
from xlstm_jax import sharding
from xlstm_jax.convert import load_hf, save_hf
from xlstm_jax.generation import generate
from xlstm_jax.nn import LanguageModel, ModelConfig, init_params
from xlstm_jax.nn.lm import PADDED_LOGIT
from xlstm_jax.counting import count_params
from xlstm_jax.training import (OptimizerConfig, abstract_train_state, batch_sharding,
                                cross_entropy, init_train_state, make_optimizer, make_train_step)

TX = make_optimizer(OptimizerConfig(learning_rate=3e-3, warmup_steps=1, num_steps=10))


def mesh222():
  return sharding.make_mesh(data=2, fsdp=2, tensor=2)


def test_rules_give_the_specs():
  assert sharding.spec("batch", "seq") == P(("data", "fsdp"), None)
  assert sharding.spec("embed", "vocab") == P("fsdp", "tensor")
  assert sharding.spec("batch", "act_heads", "seq", "head_dim") == P(("data", "fsdp"), "tensor",
                                                                     None, None)
  assert sharding.spec("batch", "seq", "act_embed") == P(("data", "fsdp"), None, None)
  assert sharding.spec("mlp", "heads") == P("tensor", None)  # one mesh axis per array
  mesh = mesh222()
  assert batch_sharding(mesh).spec == sharding.spec("batch", "seq")
  assert sharding.named_sharding(mesh).spec == P()


def test_no_partition_spec_outside_the_table():
  """Library code takes every PartitionSpec from xlstm_jax/sharding.py."""
  root = pathlib.Path(__file__).parents[1] / "xlstm_jax"
  found = [str(p) for p in root.rglob("*.py") if p.name != "sharding.py"
           and re.search(r"PartitionSpec|\bP\(", p.read_text())]
  assert not found, found


def _tiny(**kw):
  return ModelConfig(**{**dict(vocab_size=61, vocab_pad_multiple=8, embedding_dim=32,
                               num_blocks=2, slstm_at=(1,), num_heads=2, slstm_num_heads=2),
                        **kw})


def test_activations_are_constrained_by_the_table():
  """The lowered train step pins the cells' heads to `tensor` and the logits' vocabulary to
  `tensor`; outside a step (no mesh) the same model has no constraints."""
  model = LanguageModel(_tiny())
  mesh = mesh222()
  abstract, shardings = abstract_train_state(model, TX, mesh, 8)
  step = make_train_step(model, TX, mesh, shardings)
  batch = {k: jax.ShapeDtypeStruct((8, 8), jnp.int32, sharding=batch_sharding(mesh))
           for k in ("inputs", "targets")}
  text = step.lower(abstract, batch).as_text()
  constraints = re.findall(r"sharding_constraint %\S+ <@mesh, (\[.*?\])>", text)
  heads_BHTD = '[{"data", "fsdp"}, {"tensor"}, {}, {}]'
  logits_BTV = '[{"data", "fsdp"}, {}, {"tensor"}]'
  assert heads_BHTD in constraints and logits_BTV in constraints, set(constraints)
  params = init_params(model, jax.random.key(0))
  plain = jax.jit(lambda p, t: model.apply({"params": p}, t)).lower(
      params, jnp.zeros((2, 8), jnp.int32)).as_text()
  assert "sharding_constraint" not in plain


@pytest.mark.parametrize("cfg, mesh_sizes, message", [
    (_tiny(vocab_pad_multiple=1), (2, 2, 2),
     r"parameter embedding has dimension 'vocab' of size 61, which the mesh axis tensor=2 "
     r"does not divide; set --config.model.vocab_pad_multiple to a multiple of 2"),
    (_tiny(embedding_dim=36, slstm_at=()), (1, 8, 1),
     r"dimension 'embed' of size 36, which the mesh axis fsdp=8 does not divide; choose "
     r"model.embedding_dim divisible by 8"),
    (_tiny(num_heads=8, slstm_num_heads=4), (1, 1, 8),
     r"parameter stack/block_1/bias has dimension 'heads' of size 4, which the "
     r"mesh axis tensor=8 does not divide; choose a model width divisible by 8, or a mesh "
     r"whose tensor divides 4"),
])
def test_indivisible_dimensions_are_named_before_compute(cfg, mesh_sizes, message):
  with pytest.raises(ValueError, match=message):
    abstract_train_state(LanguageModel(cfg), TX, sharding.make_mesh(*mesh_sizes), 8)


def test_train_py_names_the_vocabulary_fix(tmp_path):
  result = train(tmp_path, "--config.num_steps=2", "--config.model.vocab_pad_multiple=1",
                 "--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2",
                 devices=8, ok=False)
  assert result.returncode != 0
  assert "dimension 'vocab' of size 257, which the mesh axis tensor=2 does not divide; set " \
         "--config.model.vocab_pad_multiple" in result.stderr, result.stderr[-2000:]
  assert "IndivisibleError" not in result.stderr and "step 1/" not in result.stderr


def _padded_model_with_loud_padding():
  """A padded model whose padded LM head columns would win every argmax if not masked."""
  cfg = _tiny(vocab_size=5, vocab_pad_multiple=8, slstm_at=())
  model = LanguageModel(cfg)
  params = init_params(model, jax.random.key(0))
  params["lm_head"]["kernel"] = params["lm_head"]["kernel"].at[:, 5:].set(50.0)
  return model, params


def test_padded_vocab_is_masked_out_of_the_loss():
  model, params = _padded_model_with_loud_padding()
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 5, (2, 9)), jnp.int32)
  logits = model.apply({"params": params}, tokens)
  assert logits.shape == (2, 9, 8)
  assert np.all(np.asarray(logits[..., 5:]) == PADDED_LOGIT)
  assert np.asarray(logits[..., :5]).max() < 1e3  # the true columns are untouched
  loss = cross_entropy(logits, tokens)
  np.testing.assert_allclose(loss, cross_entropy(logits[..., :5], tokens), rtol=1e-6)
  assert np.isfinite(float(loss))

  def loss_fn(p):
    return cross_entropy(model.apply({"params": p}, tokens), tokens)
  grads = jax.grad(loss_fn)(params)
  assert np.all(np.asarray(grads["lm_head"]["kernel"][:, 5:]) == 0.0)
  assert np.all(np.asarray(grads["embedding"][5:]) == 0.0)  # never looked up either


def test_padded_vocab_is_never_sampled():
  model, params = _padded_model_with_loud_padding()
  prompt = jnp.zeros((4, 3), jnp.int32)
  greedy = generate(model, params, prompt, 6)
  hot = generate(model, params, prompt, 12, temperature=5.0, rng=jax.random.key(1))
  topk = generate(model, params, prompt, 12, temperature=1.0, top_k=8, rng=jax.random.key(2))
  for out in (greedy, hot, topk):
    assert int(out.max()) < 5, out
  assert len(set(np.asarray(hot[:, 3:]).ravel().tolist())) > 1  # it did sample


def test_padding_counts_params_and_export_strips_it(tmp_path):
  cfg = ModelConfig(arch="large", vocab_size=13, embedding_dim=32, num_blocks=1, num_heads=2,
                    ffn_act="silu", norm_eps=1e-6, igate_bias_init=-10.0, gate_soft_cap=15.0,
                    logit_soft_cap=30.0)
  padded = cfg.replace(vocab_pad_multiple=8)
  assert padded.padded_vocab_size == 16 and cfg.padded_vocab_size == 13
  assert count_params(padded) - count_params(cfg) == 2 * 3 * 32  # embedding rows + head cols
  model = LanguageModel(padded)
  params = init_params(model, jax.random.key(0))
  save_hf(model, params, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == 13
  plain_model, plain_params = load_hf(tmp_path)  # the true vocabulary only
  assert plain_params["embedding"].shape == (13, 32)
  repadded_model, repadded = load_hf(tmp_path, vocab_pad_multiple=8)
  assert repadded["embedding"].shape == (16, 32)
  tokens = jnp.asarray([[1, 5, 12, 0]], jnp.int32)
  ours = model.apply({"params": params}, tokens)
  np.testing.assert_allclose(plain_model.apply({"params": plain_params}, tokens),
                             ours[..., :13], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(repadded_model.apply({"params": repadded}, tokens), ours,
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["llama", "large"])
def test_other_archs_on_2x2x2_equal_one_device(arch):
  """Tensor-parallel activations of the attention and xLSTM-7B blocks give the 1-device
  losses (the xlstm arch: test_training_step and the default-config run below)."""
  extra = {"large": dict(ffn_act="silu", norm_eps=1e-6)}.get(arch, {})
  model = LanguageModel(ModelConfig(arch=arch, vocab_size=61, vocab_pad_multiple=8,
                                    embedding_dim=32, num_blocks=2, num_heads=2, **extra))
  rng = np.random.default_rng(0)
  data = [{k: jnp.asarray(rng.integers(0, 61, (8, 8)), jnp.int32)
           for k in ("inputs", "targets")} for _ in range(2)]
  losses = {}
  for name, mesh in (("one", sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])),
                     ("eight", mesh222())):
    state, shardings = init_train_state(model, TX, jax.random.key(0), mesh, 8)
    step = make_train_step(model, TX, mesh, shardings)
    losses[name] = []
    for batch in data:
      state, m = step(state, batch)
      losses[name].append(float(m["loss"]))
  np.testing.assert_allclose(losses["eight"], losses["one"], rtol=1e-5)


def test_default_config_on_2x2x2_equals_one_device(tmp_path):
  """`python train.py --config=configs/default.py` on data=2, fsdp=2, tensor=2 (8 devices):
  the byte vocabulary (257) is padded to 320, and losses and the evaluation are the
  1-device run's."""
  steps = ["--config.num_steps=3", "--config.checkpoint_every=3", "--config.eval_every=3",
           "--config.optimizer.warmup_steps=1"]
  train(tmp_path / "one", *steps)
  train(tmp_path / "eight", *steps, "--config.mesh.data=2", "--config.mesh.fsdp=2",
        "--config.mesh.tensor=2", devices=8)
  one, eight = metrics(tmp_path / "one"), metrics(tmp_path / "eight")
  assert sorted(one) == sorted(eight) == [1, 2, 3]
  for step in one:
    assert eight[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5), step
  evals = {run: [json.loads(line)["eval_loss"] for line in
                 (tmp_path / run / "metrics.jsonl").read_text().splitlines()
                 if "eval_loss" in line] for run in ("one", "eight")}
  assert evals["eight"] == pytest.approx(evals["one"], rel=1e-5) and len(evals["one"]) == 1
