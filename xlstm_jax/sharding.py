"""Mesh construction and the one table mapping logical axis names to mesh axes.

Mesh axes: data (pure data parallel), fsdp (data parallel with sharded parameters and
optimizer state), tensor (tensor parallel inside a layer). Parameters carry logical names
(`nn.with_logical_partitioning`), activations get them at block boundaries and around the
cells (`nn.with_logical_constraint`); `LOGICAL_RULES` is the only place either meets mesh
axes, and every PartitionSpec of a run (parameters, optimizer state, batch, activations)
is derived from it. Activation names differ from parameter names where the two shard
differently: the residual width of a parameter is sharded over fsdp ("embed"), that of an
activation is not ("act_embed", its batch is already split over fsdp).
"""

from __future__ import annotations

import contextlib
import math

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

LOGICAL_RULES = (
    # parameters
    ("embed", "fsdp"),            # residual width: parameters sharded over fsdp
    ("mlp", "tensor"),            # inner/FFN width
    ("heads", "tensor"),          # per-head parameters
    ("vocab", "tensor"),          # embedding rows, LM head columns
    ("layers", None),             # the stacked axis of scanned blocks
    ("conv", None),               # conv taps
    # activations (and the batch)
    ("batch", ("data", "fsdp")),  # batch over every data-parallel axis
    ("seq", None),                # time: whole on every device
    ("act_embed", None),          # residual stream width: replicated over tensor
    ("act_mlp", "tensor"),        # inner widths of a block (up-projections, q/k/v)
    ("act_heads", "tensor"),      # the heads of a cell
    ("head_dim", None),           # features within a head
    ("act_vocab", "tensor"),      # logits
)

# What to change when a dimension does not split over its mesh axis, by logical name.
_FIXES = {
    "vocab": "set --config.model.vocab_pad_multiple to a multiple of {k} (e.g. 64): the "
             "padded rows are masked out of the loss and of sampling",
    "embed": "choose model.embedding_dim divisible by {k}, or a smaller --config.mesh.fsdp",
}


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices=None) -> Mesh:
  """A (data, fsdp, tensor) mesh over all devices; one axis may be -1 (the rest)."""
  devices = np.asarray(jax.devices() if devices is None else devices)
  sizes = [data, fsdp, tensor]
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh sizes {dict(zip(MESH_AXES, sizes))}: at most one may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if devices.size % known:
      raise ValueError(f"{devices.size} devices do not split into mesh "
                       f"{dict(zip(MESH_AXES, sizes))}")
    sizes[sizes.index(-1)] = devices.size // known
  if math.prod(sizes) != devices.size:
    raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                     f"have {devices.size}")
  return Mesh(devices.reshape(sizes), MESH_AXES)


def spec(*names: str | None, rules=LOGICAL_RULES) -> PartitionSpec:
  """The PartitionSpec of an array whose axes have these logical names (None: replicated)."""
  return nn.logical_to_mesh_axes(names, rules)


def named_sharding(mesh: Mesh, *names: str | None, rules=LOGICAL_RULES) -> NamedSharding:
  """`spec(*names)` on `mesh`; no names: replicated."""
  return NamedSharding(mesh, spec(*names, rules=rules))


def logical_shardings(boxed_tree, mesh: Mesh, rules=LOGICAL_RULES):
  """NamedShardings for a tree of logically partitioned values (e.g. from `eval_shape`).

  Raises ValueError, naming the parameter, dimension, mesh axis and the fix, when a
  dimension is not divisible by the mesh axes the table maps it to.
  """
  check_divisible(boxed_tree, mesh, rules)
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def check_divisible(boxed_tree, mesh: Mesh, rules=LOGICAL_RULES) -> None:
  """Every logically named dimension of the tree splits evenly over its mesh axes.

  jax would refuse such a sharding with an IndivisibleError at the first compile; this says
  which model dimension and which axis, and how to fix it, before any compute.
  """
  boxed = lambda x: isinstance(x, nn.LogicallyPartitioned)  # noqa: E731
  for path, leaf in jax.tree_util.tree_leaves_with_path(boxed_tree, is_leaf=boxed):
    if not boxed(leaf):
      continue
    mesh_axes = nn.logical_to_mesh_axes(leaf.names, rules)
    for dim, (name, axes) in enumerate(zip(leaf.names, mesh_axes)):
      if axes is None:
        continue
      axes = (axes,) if isinstance(axes, str) else tuple(axes)
      k = math.prod(mesh.shape[a] for a in axes)
      size = leaf.value.shape[dim]
      if size % k:
        where = "/".join(str(getattr(p, "key", p)) for p in path)
        fix = _FIXES.get(name, "choose a model width divisible by {k}, or a mesh whose "
                               "{axes} divides {size}").format(k=k, axes="*".join(axes),
                                                               size=size)
        raise ValueError(
            f"parameter {where} has dimension {name!r} of size {size}, which the mesh axis "
            f"{'*'.join(axes)}={k} does not divide; {fix}")


def check_batch_divisible(batch_size: int, mesh: Mesh) -> None:
  """The global batch splits evenly over the mesh's data-parallel axes (data * fsdp), which
  shard the batch dimension; else a ValueError naming both, before any compute."""
  dp = mesh.shape["data"] * mesh.shape["fsdp"]
  if batch_size % dp:
    raise ValueError(f"batch_size={batch_size} is not divisible by the data-parallel "
                     f"mesh size data*fsdp={dp}")


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules=LOGICAL_RULES):
  """Inside it, the model's `nn.with_logical_constraint`s shard activations on `mesh` by
  the table. Enter it inside the traced function (the train/eval step); outside it (unit
  tests, generation on one device) the constraints do nothing."""
  with jax.sharding.use_abstract_mesh(mesh.abstract_mesh), nn.logical_axis_rules(rules):
    yield
