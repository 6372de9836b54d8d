"""Helpers shared by the converters: flat parameter paths, shape checks, scan layout.

Flat parameters hold the true vocabulary (the references' layout): `build_params` pads the
embedding rows and LM head columns to a padded model vocabulary (cfg.vocab_pad_multiple)
with zeros, and `flatten_params` strips them again, so exports never carry padded rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from xlstm_jax.nn.lm import LanguageModel


def abstract_params(model: LanguageModel) -> dict[str, tuple[int, ...]]:
  """{"stack/block_0/q/kernel": shape} of the model in its loop (unscanned) layout."""
  loop = LanguageModel(model.cfg.replace(scan_blocks=False))
  shapes = jax.eval_shape(lambda: loop.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(shapes["params"]):
    keys = [p.key for p in path if hasattr(p, "key")]
    flat["/".join(keys)] = tuple(leaf.shape)
  return flat


def build_params(model: LanguageModel, flat: dict[str, np.ndarray], source: str):
  """Nests flat arrays into the model's parameter tree after checking names and shapes.

  Returns the tree in the model's layout (stacked "blocks" if cfg.scan_blocks).
  """
  expected = abstract_params(model)
  flat = _pad_vocab(flat, model.cfg.vocab_size, model.cfg.padded_vocab_size)
  missing = sorted(set(expected) - set(flat))
  extra = sorted(set(flat) - set(expected))
  if missing or extra:
    raise ValueError(f"{source}: parameters missing {missing}, unexpected {extra}")
  for name, shape in expected.items():
    if tuple(flat[name].shape) != shape:
      raise ValueError(f"{source}: {name} has shape {tuple(flat[name].shape)}, the model "
                       f"expects {shape}")
  dtype = model.cfg.jnp_param_dtype
  tree: dict = {}
  for name, arr in flat.items():
    node = tree
    *parents, leaf = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(arr, dtype)
  return to_scan_layout(tree, model.cfg.num_blocks) if model.cfg.scan_blocks else tree


def flatten_params(model: LanguageModel, params) -> dict[str, np.ndarray]:
  """The inverse of `build_params`: {"stack/block_0/q/kernel": np.ndarray}."""
  if model.cfg.scan_blocks:
    params = from_scan_layout(params, model.cfg.num_blocks)
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    flat["/".join(p.key for p in path)] = np.asarray(leaf, np.float32)
  V = model.cfg.vocab_size
  if model.cfg.padded_vocab_size > V:  # padded ids are no tokens: the true vocabulary only
    flat["embedding"] = flat["embedding"][:V]
    if "lm_head/kernel" in flat:
      flat["lm_head/kernel"] = flat["lm_head/kernel"][:, :V]
  return flat


def _pad_vocab(flat: dict, vocab: int, padded: int) -> dict:
  """Zero rows of the embedding [V, E] and zero columns of the LM head [E, V] up to
  `padded`; arrays of another shape are left to build_params' shape check."""
  if padded == vocab:
    return flat
  flat = dict(flat)
  if "embedding" in flat and flat["embedding"].shape[0] == vocab:
    flat["embedding"] = np.pad(flat["embedding"], ((0, padded - vocab), (0, 0)))
  if "lm_head/kernel" in flat and flat["lm_head/kernel"].shape[1] == vocab:
    flat["lm_head/kernel"] = np.pad(flat["lm_head/kernel"], ((0, 0), (0, padded - vocab)))
  return flat


def to_scan_layout(tree, num_blocks):
  blocks = [tree["stack"].pop(f"block_{i}") for i in range(num_blocks)]
  tree["stack"]["blocks"] = jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)
  return tree


def from_scan_layout(tree, num_blocks):
  tree = dict(tree)
  stacked = tree["stack"]["blocks"]
  tree["stack"] = {f"block_{i}": jax.tree.map(lambda x: x[i], stacked)
                   for i in range(num_blocks)}
  return tree
