"""The entry points' XLA:CPU flags (xlstm_jax/cpu_setup.py): YNNPACK's reductions are turned
off unless XLA_FLAGS chooses the YNNPACK fusion types itself, and a process that calls
prepare_process() before importing jax compiles a long reduction without a YNNPACK fusion."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from xlstm_jax import cpu_setup

ROOT = str(pathlib.Path(__file__).resolve().parents[1])


def test_flag_is_appended_and_a_users_choice_is_kept():
  assert cpu_setup.xla_flags_with_cpu_defaults("") == cpu_setup.YNN_REDUCE_OFF
  assert (cpu_setup.xla_flags_with_cpu_defaults("--xla_force_host_platform_device_count=8")
          == f"--xla_force_host_platform_device_count=8 {cpu_setup.YNN_REDUCE_OFF}")
  own = "--xla_cpu_experimental_ynn_fusion_type=dot"
  assert cpu_setup.xla_flags_with_cpu_defaults(own) == own
  environ = {"XLA_FLAGS": "--a=1"}
  cpu_setup.set_cpu_xla_flags(environ)
  cpu_setup.set_cpu_xla_flags(environ)   # idempotent
  assert environ == {"XLA_FLAGS": f"--a=1 {cpu_setup.YNN_REDUCE_OFF}"}


# Compiles the parameter-gradient reduction of a batch of one ([1, 2048, 512] -> [512]) and
# says whether XLA:CPU handed it to YNNPACK.
CHILD = """
import sys
if sys.argv[1] == "prepare":
  from xlstm_jax.cpu_setup import prepare_process
  prepare_process()
import jax, jax.numpy as jnp
x = jnp.ones((1, 2048, 512))
text = jax.jit(lambda x: (x * x).sum((0, 1))).lower(x).compile().as_text()
print("ynn" if "ynn_fusion" in text else "xla", float(jax.jit(lambda x: (x * x).sum())(x)))
"""


def run_child(mode: str) -> list[str]:
  env = {**os.environ, "XLA_FLAGS": "", "XLSTM_HUGEPAGES": "0", "PYTHONPATH": ROOT}
  out = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, check=True,
                       capture_output=True, text=True).stdout
  return out.split()


def test_prepare_process_takes_the_reduction_from_ynnpack():
  plain, prepared = run_child("plain"), run_child("prepare")
  assert prepared[0] == "xla"
  assert plain[1] == prepared[1] == str(float(2048 * 512))   # same result either way
  # Without the flag this jaxlib fuses the reduction into YNNPACK (the slow path); a jaxlib
  # that no longer does makes the flag moot, not wrong.
  print("without the flag:", plain[0])
