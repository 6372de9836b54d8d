"""The environment a GPU suite ran in: device, driver, versions, missing packages.

Prints one `key: value` line each and, with --out, writes them as JSON. The package check
imports every module the suite's parts need, so a part that fails for a missing package
is explained here first (carry it as a wheel: benchmarks/gpu_wheels.sh).

  python benchmarks/gpu_env.py [--out env.json]
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys

# module -> distribution name (for the version)
NEEDED = {"jax": "jax", "jaxlib": "jaxlib", "flax": "flax", "optax": "optax",
          "orbax.checkpoint": "orbax-checkpoint", "chex": "chex", "grain": "grain",
          "ml_collections": "ml_collections", "tensorboardX": "tensorboardX",
          "absl": "absl-py", "numpy": "numpy", "matplotlib": "matplotlib", "pytest": "pytest"}
OPTIONAL = {"triton": "triton", "torch": "torch", "flashrnn": "flashrnn",
            "mlstm_kernels": "mlstm_kernels", "jax_triton": "jax-triton"}


def _version(dist: str) -> str | None:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def packages(modules: dict) -> tuple[dict, dict]:
  """(versions of the importable ones, import error of the others)."""
  found, missing = {}, {}
  for module, dist in modules.items():
    try:
      importlib.import_module(module)
      found[module] = _version(dist) or "importable (no version metadata)"
    except Exception as e:  # noqa: BLE001 (any failure to import is reported, not raised)
      missing[module] = f"{type(e).__name__}: {e}"[:200]
  return found, missing


def nvidia_smi() -> str:
  """The GPUs' name, driver, memory and CUDA version as nvidia-smi reports them."""
  if shutil.which("nvidia-smi") is None:
    return "nvidia-smi not found"
  query = "name,driver_version,memory.total,compute_cap"
  out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                       capture_output=True, text=True, timeout=30, check=False)
  return (out.stdout or out.stderr).strip()


def environment() -> dict:
  """Everything above as one dict."""
  import jax  # noqa: PLC0415 (after the package check could report it missing)
  found, missing = packages(NEEDED)
  optional, optional_missing = packages(OPTIONAL)
  devices = jax.devices()
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "python": sys.version.split()[0], "platform": platform.platform(),
      "jax_backend": jax.default_backend(), "device_kind": devices[0].device_kind,
      "device_count": len(devices), "nvidia_smi": nvidia_smi(),
      "packages": found, "missing": missing, "optional": optional,
      "optional_missing": sorted(optional_missing),
  }


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--out", default=None, help="also write the environment as JSON here")
  args = p.parse_args(argv)
  env = environment()
  for key, value in env.items():
    print(f"{key}: {value}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(env, f, indent=1)
  if env["missing"]:
    print(f"MISSING (carry as wheels, benchmarks/gpu_wheels.sh): {sorted(env['missing'])}")


if __name__ == "__main__":
  main()
