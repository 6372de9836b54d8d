"""Every notebook in notebooks/ runs top to bottom in a fresh Jupyter kernel, at small settings.

A notebook's cell tagged "parameters" holds its settings (steps, sizes); the test puts a
cell with SMALL[name] right after it (papermill's convention), so the notebook runs as a
reader would run it, only smaller. The notebooks check their own claims with `assert`
(forms agree, the matrix memory recalls more than the vector memory, ...), so a notebook
that runs also shows what it says. Committed notebooks carry no outputs.
"""

import json
import os
import pathlib

import nbclient
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Settings that make each notebook run in well under a minute on 2 CPU cores; {tmp} is the
# test's temporary directory (for anything a notebook writes).
SMALL = {
    "01_quickstart": "STEPS = 30\nNEW_TOKENS = 40\nWORKDIR = '{tmp}/quickstart'\n",
    "02_revision_lab": "STREAMS = 16\nSTEPS = 4\nEVAL_STREAMS = 4\nWORKDIR = '{tmp}/revision_lab'\n",
    "03_memory_capacity": "WIDTHS = (16, 32)\nPAIRS = tuple(2 ** j for j in range(9))\nTRIALS = 4\n",
    "04_three_forms": "T_CHECK = 40\nT_PALLAS = 40\nCHUNK = 16\nTIMING_LENGTHS = (64, 128, 256)\nREPEATS = 3\n",
    "05_scaling_laws": "BOOTSTRAP = 4\nOUT = '{tmp}/scaling'\n",
    "06_ablations": "",
}


def test_every_notebook_has_small_settings_and_no_outputs():
  names = [p.stem for p in NOTEBOOKS]
  assert names, "no notebooks found"
  assert sorted(SMALL) == names, "each notebook needs an entry in SMALL (and only those)"
  for path in NOTEBOOKS:
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    for cell in nb["cells"]:
      if cell["cell_type"] == "code":
        assert not cell["outputs"] and cell["execution_count"] is None, (
            f"{path.name}: commit notebooks without outputs (clear them first)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
  nb = nbformat.read(path, as_version=4)
  index = next(i for i, c in enumerate(nb.cells)
               if "parameters" in c.get("metadata", {}).get("tags", []))
  nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
      "# injected by tests/test_notebooks.py: small settings\n"
      + SMALL[path.stem].format(tmp=tmp_path)))
  env = {"XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)   # the kernel inherits this process's environment
  try:
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()   # in notebooks/, as Jupyter runs it
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.get("output_type") == "error"]
  assert not errors   # nbclient raises on an error already; this guards allow_errors
