"""Train state, loss, and the sharded, jitted train step.

Parameters are initialised directly into their shardings (eval_shape -> logical axes ->
NamedShardings -> jit(init, out_shardings)); the step is one `jax.jit` with in/out
shardings and the state donated. Every sharding comes from `sharding.LOGICAL_RULES`: the
batch's ("batch", "seq"), and the model's activations through its logical constraints,
active inside the step (`sharding.activation_sharding`).
"""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding

from xlstm_jax import sharding


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: dict
  opt_state: optax.OptState


def cross_entropy(logits, targets, mask=None):
  """Mean next-token cross entropy over the tokens where `mask` (default: all); logits [B, T, V]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  if mask is None:
    return nll.mean()
  mask = mask.astype(jnp.float32)
  return (nll * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def accuracy(logits, targets, mask=None):
  """Fraction of the (masked) positions whose argmax logit is the target."""
  hit = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  if mask is None:
    return hit.mean()
  mask = mask.astype(jnp.float32)
  return (hit * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """[B, T] arrays: the table's ("batch", "seq") (batch over the data-parallel axes)."""
  return sharding.named_sharding(mesh, "batch", "seq")


def abstract_train_state(model, tx: optax.GradientTransformation, mesh: Mesh, seq_len: int):
  """(abstract state, state shardings) without allocating: the restore target of a run."""
  tokens = jnp.zeros((1, seq_len), jnp.int32)
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens)["params"])
  param_shardings = sharding.logical_shardings(boxed, mesh)
  params = nn.unbox(boxed)
  abstract = TrainState(jax.ShapeDtypeStruct((), jnp.int32), params,
                        jax.eval_shape(tx.init, params))
  replicated = sharding.named_sharding(mesh)
  # Optimizer moments mirror the parameters; find each by shape-tree position.
  opt_shardings = optax.tree_map_params(tx, lambda _, s: s, abstract.opt_state,
                                        param_shardings, transform_non_params=lambda _: replicated)
  shardings = TrainState(replicated, param_shardings, opt_shardings)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          abstract, shardings)
  return abstract, shardings


def init_train_state(model, tx: optax.GradientTransformation, rng, mesh: Mesh, seq_len: int):
  """(state, state_shardings): parameters and optimizer state created sharded."""
  tokens = jnp.zeros((1, seq_len), jnp.int32)

  def init():
    params = nn.unbox(model.init(rng, tokens)["params"])
    return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))

  _, shardings = abstract_train_state(model, tx, mesh, seq_len)  # the one model trace
  return jax.jit(init, out_shardings=shardings)(), shardings


def make_train_step(model, tx: optax.GradientTransformation, mesh: Mesh, state_shardings):
  """A jitted (state, batch) -> (state, metrics).

  batch = {"inputs", "targets"} [B, T] and optionally "mask" [B, T] (the scored positions,
  e.g. a synthetic task's answers). metrics: loss, accuracy (both over the mask), grad_norm.
  """
  def train_step(state: TrainState, batch):
    def loss_fn(params):
      with sharding.activation_sharding(mesh):
        logits = model.apply({"params": params}, batch["inputs"])
      mask = batch.get("mask")
      return cross_entropy(logits, batch["targets"], mask), accuracy(logits, batch["targets"],
                                                                     mask)

    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "accuracy": acc, "grad_norm": optax.tree.norm(grads)}
    return TrainState(state.step + 1, params, opt_state), metrics

  data = batch_sharding(mesh)
  return jax.jit(train_step, in_shardings=(state_shardings, data),  # data: every batch array
                 out_shardings=(state_shardings, sharding.named_sharding(mesh)), donate_argnums=0)
