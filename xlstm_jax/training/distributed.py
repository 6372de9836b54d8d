"""Multi-process start-up: `jax.distributed.initialize()` when the launch asks for it.

  python train.py ... --coordinator_address=host0:1234 --num_processes=2 --process_id=0
  JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python train.py ...
  srun -N 2 --ntasks-per-node=1 python train.py ...        (Slurm: detected, nothing to pass)

Flags win over the environment. A Slurm job step with more than one task is detected
from SLURM_JOB_ID / SLURM_NTASKS and left to JAX's own Slurm detection. With none of
these the run is single-process and nothing is initialised. CPU processes use gloo for
their collectives, so multi-process runs also work on CPU-only machines (and in tests).
"""

from __future__ import annotations

import os

import jax


def _env_int(env, name: str) -> int | None:
  value = env.get(name)
  if value is None or value == "":
    return None
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def launch_settings(coordinator_address: str | None = None, num_processes: int | None = None,
                    process_id: int | None = None, environ=None) -> dict | None:
  """The initialize() arguments the launch asks for, or None for a single-process run.

  Sources, first found wins per field: arguments, then JAX_COORDINATOR_ADDRESS /
  JAX_NUM_PROCESSES / JAX_PROCESS_ID. Slurm (SLURM_JOB_ID with SLURM_NTASKS > 1) leaves
  unset fields to JAX's detection. Raises ValueError for a partial specification.
  """
  env = os.environ if environ is None else environ
  address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
  count = num_processes if num_processes is not None else _env_int(env, "JAX_NUM_PROCESSES")
  index = process_id if process_id is not None else _env_int(env, "JAX_PROCESS_ID")
  slurm = "SLURM_JOB_ID" in env and (_env_int(env, "SLURM_NTASKS") or 1) > 1
  if address is None and count is None and index is None:
    return {} if slurm else None
  if count is not None and count == 1 and not slurm:
    return None  # an explicit single-process launch
  given = {"coordinator_address": address, "num_processes": count, "process_id": index}
  missing = [k for k, v in given.items() if v is None]
  if missing and not slurm:
    raise ValueError(f"a multi-process launch needs coordinator_address, num_processes and "
                     f"process_id; got {given} (missing {missing}). Pass them as flags or "
                     "JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID.")
  if count is not None and count < 1:
    raise ValueError(f"num_processes={count} must be >= 1")
  if count is not None and index is not None and not 0 <= index < count:
    raise ValueError(f"process_id={index} is not in [0, num_processes={count})")
  return {k: v for k, v in given.items() if v is not None}


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Initialises jax.distributed if the launch is multi-process; returns whether it did.

  Must run before anything touches a JAX device (train.py calls it first thing).
  """
  settings = launch_settings(coordinator_address, num_processes, process_id)
  if settings is None:
    return False
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**settings)
  return True
