"""`import xlstm_jax.ops` loads jax and numpy (and chex), not Flax, the training stack or
the converters; the Pallas kernels load only when a dispatcher asks the registry for
them; and pallas_kernels imports no xlstm_jax module beyond ops' public algebra, the
registry and (for its reference) the jnp chunkwise form."""

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("flax", "ml_collections", "optax", "orbax", "torch", "xlstm_jax.convert",
         "xlstm_jax.nn", "pallas_kernels")


def _modules_after(code: str) -> list[str]:
  """sys.modules (top-level names and xlstm_jax/pallas_kernels submodules) after running
  `code` in a fresh interpreter at the repository root."""
  script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
  out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, check=True, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin"})
  return json.loads(out.stdout.strip().splitlines()[-1])


def _loaded(modules, prefix):
  return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


def test_ops_import_is_light():
  modules = _modules_after("import xlstm_jax.ops")
  for heavy in HEAVY:
    assert not _loaded(modules, heavy), f"import xlstm_jax.ops loaded {_loaded(modules, heavy)}"
  assert "jax" in modules and "numpy" in modules


def test_kernel_loads_on_first_request():
  modules = _modules_after(
      "from xlstm_jax.ops import kernel_registry\n"
      "assert kernel_registry.registered() == ()\n"
      "kernel_registry.get('mlstm_chunkwise')\n"
      "assert kernel_registry.registered() == ('mlstm_chunkwise',)")
  assert "pallas_kernels.mlstm_chunkwise" in modules
  for heavy in ("flax", "optax", "ml_collections", "xlstm_jax.nn", "xlstm_jax.convert"):
    assert not _loaded(modules, heavy), f"the kernel import loaded {_loaded(modules, heavy)}"


def test_package_attributes_stay_reachable():
  """The lazy package still offers its names (PEP 562)."""
  modules = _modules_after(
      "import xlstm_jax\n"
      "assert callable(xlstm_jax.generate) and xlstm_jax.nn.LanguageModel\n"
      "assert set(xlstm_jax.__all__) <= set(dir(xlstm_jax))")
  assert "flax" in modules


# The jax-only ops modules kernels may use: the chunk algebra, the registry, the jnp forms
# their references call, and the sLSTM's own pointwise cell and gates (the fused kernel
# runs the op's cell, so the two cannot drift).
ALLOWED = {"xlstm_jax.ops.mlstm_chunk_algebra", "xlstm_jax.ops.kernel_registry",
           "xlstm_jax.ops.mlstm_chunkwise", "xlstm_jax.ops.slstm", "xlstm_jax.ops.gates"}


def test_kernels_import_only_ops_public_algebra():
  for path in sorted((ROOT / "pallas_kernels").rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      else:
        continue
      top = names[0].split(".")[0]
      assert top not in ("flax", "optax", "ml_collections", "orbax"), f"{path}: {names[0]}"
      if top == "xlstm_jax":
        assert set(names) & ALLOWED, f"{path.relative_to(ROOT)} imports {names[0]}"
