"""Mesh construction and the one table mapping logical axis names to mesh axes.

Mesh axes: data (pure data parallel), fsdp (data parallel with sharded parameters and
optimizer state), tensor (tensor parallel inside a layer). Parameters carry logical names
(`nn.with_logical_partitioning`); this table is the only place they meet mesh axes.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh

MESH_AXES = ("data", "fsdp", "tensor")

LOGICAL_RULES = (
    ("batch", ("data", "fsdp")),  # activations: batch over every data-parallel axis
    ("embed", "fsdp"),            # residual width: parameters sharded over fsdp
    ("mlp", "tensor"),            # inner/FFN width
    ("heads", "tensor"),          # per-head parameters
    ("vocab", "tensor"),          # embedding rows, LM head columns
    ("layers", None),             # the stacked axis of scanned blocks
    ("conv", None),               # conv taps
)


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


def logical_shardings(boxed_tree, mesh: Mesh, rules=LOGICAL_RULES):
  """NamedShardings for a tree of logically partitioned values (e.g. from `eval_shape`)."""
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)
