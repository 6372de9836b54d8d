"""The one save helper of every figure the library draws (evaluation/plots.py,
scaling/fit_plots.py, scaling/ablation_report.py). Figures are built with
`matplotlib.figure.Figure`, never pyplot, so the caller's backend is untouched."""

from __future__ import annotations

import pathlib

from matplotlib.figure import Figure


def save_figure(fig: Figure, path, dpi: int = 120) -> pathlib.Path:
  """Writes `fig` to `path` (a PNG, making its folder) at `dpi`; returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=dpi)
  return path
