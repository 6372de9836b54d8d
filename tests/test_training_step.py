"""The optimizer and the sharded train step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import assert_close
from xlstm_jax import sharding
from xlstm_jax.nn import LanguageModel, ModelConfig, init_params
from xlstm_jax.training import (OptimizerConfig, decay_mask, init_train_state, lr_schedule,
                                make_optimizer, make_train_step)

CFG = ModelConfig(vocab_size=64, embedding_dim=32, num_blocks=3, slstm_at=(1,), num_heads=2,
                  slstm_num_heads=2)


def batches(n, B=8, T=16, seed=0):
  rng = np.random.default_rng(seed)
  return [{k: jnp.asarray(rng.integers(0, 64, (B, T)), jnp.int32) for k in ("inputs", "targets")}
          for _ in range(n)]


def run(mesh, data, opt=OptimizerConfig(learning_rate=3e-3, warmup_steps=1, num_steps=10)):
  model, tx = LanguageModel(CFG), make_optimizer(opt)
  state, shardings = init_train_state(model, tx, jax.random.key(0), mesh, 16)
  step = make_train_step(model, tx, mesh, shardings)
  losses = []
  for batch in data:
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  return losses, state


def test_eight_devices_equal_one_device():
  data = batches(3)
  one, _ = run(sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1]), data)
  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2)
  eight, state = run(mesh, data)
  np.testing.assert_allclose(eight, one, rtol=1e-5)
  kernel = state.params["stack"]["block_0"]["proj_up"]["kernel"]
  assert tuple(kernel.sharding.spec) == ("fsdp", "tensor")  # really sharded, not replicated
  assert len(kernel.addressable_shards) == 8


def test_gradient_accumulation_equals_the_full_batch():
  mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])
  full = batches(1)[0]
  halves = [{k: v[:4] for k, v in full.items()}, {k: v[4:] for k, v in full.items()}]
  _, one_step = run(mesh, [full])
  _, accumulated = run(mesh, halves, OptimizerConfig(learning_rate=3e-3, warmup_steps=1,
                                                     num_steps=10, grad_accum_steps=2))
  assert_close(accumulated.params, one_step.params, 1e-5, "accumulated vs full batch")


def test_loss_falls_on_a_learnable_batch():
  mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])
  tokens = jnp.tile(jnp.arange(17, dtype=jnp.int32) % 7, (8, 1))
  batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
  losses, _ = run(mesh, [batch] * 25, OptimizerConfig(learning_rate=1e-2, warmup_steps=2,
                                                       num_steps=25))
  assert losses[-1] < 0.3 * losses[0], losses


def test_schedule_and_decay_mask():
  cfg = OptimizerConfig(learning_rate=1.0, warmup_steps=10, num_steps=110, final_lr_ratio=0.1)
  lr = lr_schedule(cfg)
  assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5)
  assert float(lr(10)) == pytest.approx(1.0) and float(lr(110)) == pytest.approx(0.1)
  assert float(lr(500)) == pytest.approx(0.1)
  after = [float(lr(s)) for s in range(10, 111, 10)]
  assert all(a > b for a, b in zip(after, after[1:]))
  params = init_params(LanguageModel(CFG), jax.random.key(0))
  for flag in (False, True):
    mask = decay_mask(params, decay_embeddings=flag)
    assert mask["embedding"] is flag
    assert mask["lm_head"]["kernel"] and mask["stack"]["block_1"]["recurrent_kernel"]
    assert not mask["post_norm"]["scale"] and not mask["stack"]["block_0"]["igate"]["bias"]
    assert not mask["stack"]["block_0"]["skip"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_steps=0), "num_steps=0"),
    (dict(warmup_steps=20, num_steps=10), "warmup_steps=20"),
    (dict(grad_clip=0.0), "grad_clip=0.0"),
    (dict(grad_accum_steps=0), "grad_accum_steps=0"),
])
def test_bad_optimizer_configs(kwargs, match):
  with pytest.raises(ValueError, match=match):
    OptimizerConfig(**kwargs)


def test_mask_scores_only_the_marked_positions():
  """The step's loss and accuracy over a mask equal the hand-computed masked mean, and the
  update uses only masked positions (changing an unmasked target changes nothing)."""
  mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])
  batch = batches(1)[0]
  mask = jnp.asarray(np.random.default_rng(1).random((8, 16)) < 0.3)
  model, tx = LanguageModel(CFG), make_optimizer(OptimizerConfig(warmup_steps=1, num_steps=10))
  state, shardings = init_train_state(model, tx, jax.random.key(0), mesh, 16)
  logits = model.apply({"params": state.params}, batch["inputs"])
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), batch["targets"][..., None], -1)[..., 0]
  hit = jnp.argmax(logits, -1) == batch["targets"]
  step = make_train_step(model, tx, mesh, shardings)
  new, metrics = step(state, {**batch, "mask": mask})
  np.testing.assert_allclose(float(metrics["loss"]), float(nll[mask].mean()), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["accuracy"]), float(hit[mask].mean()), rtol=1e-6)
  state, _ = init_train_state(model, tx, jax.random.key(0), mesh, 16)  # the old one was donated
  other = {**batch, "targets": jnp.where(mask, batch["targets"], (batch["targets"] + 1) % 64),
           "mask": mask}
  again, _ = step(state, other)
  assert_close(again.params, new.params, 1e-6, "unmasked targets must not matter")
