"""What the scaling-law fits report: a printed summary and PNG figures (matplotlib, no pyplot:
the caller's backend is untouched).

  print(summary("xlstm", fit))                                 # constants, exponents, bootstrap
  plot_loss_vs_compute(runs, fits, "DIR/loss_vs_compute.png")  # runs, compute-optimal frontier
  plot_isoflop(runs, fits, "DIR/isoflop.png")                  # loss vs N per budget, parabolas
  plot_optimal_scaling(runs, fits, "DIR/optimal_scaling.png")  # N*(C) and D*(C), both fits

`runs` maps a family label to its runs' arrays {"N", "D", "C", "L", "budget"} (params, tokens,
flops, loss, IsoFLOP budget per run); `fits` maps the same label to `fit.fit_family`'s result.
The compute-optimal frontier of a parametric fit takes D = C / (k N) with k the geometric mean
of the family's flops / (params x tokens). Each function writes the PNG (making its folder)
and returns its path.
"""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from xlstm_jax.plotting import save_figure

from xlstm_jax.scaling.fit import CHINCHILLA, PARAMETRIC, optimal_frontier


def _k(r: dict) -> float:
  """Flops per parameter and token of a family's runs (6 for the 6 N D convention)."""
  return float(np.exp(np.mean(np.log(r["C"] / (r["N"] * r["D"])))))


def _counted(r: dict, budget: float) -> float:
  """Where a budget's IsoFLOP minimum sits on the runs' counted-FLOPs axis: the geometric
  mean of its runs' flops (a planned 6 N budget and the counted flops differ)."""
  m = np.isclose(r["budget"], budget, rtol=1e-9)
  return float(np.exp(np.log(r["C"][m]).mean())) if m.any() else budget


def _compute_range(r: dict) -> np.ndarray:
  return np.geomspace(r["C"].min() / 2, r["C"].max() * 2, 40)


def _pm(fit: dict, key: str) -> str:
  """'0.34 +- 0.01' with the bootstrap std when there is one."""
  boot = fit.get("bootstrap")
  return f"{fit[key]:.3f}" + (f" +- {boot[key]['std']:.3f}" if boot else "")


def _line(name: str, value: float, boot: dict | None) -> str:
  if boot is None:
    return f"    {name:<6} {value:.4g}"
  s = boot[name]
  return f"    {name:<6} {value:.4g} +- {s['std']:.2g}  [5%: {s['p05']:.4g}, 95%: {s['p95']:.4g}]"


def summary(label: str, fit: dict) -> str:
  """A few readable lines of one family's fits: each constant and exponent with its
  bootstrap std and 5/95 percentiles."""
  lines = []
  for name, form in (("chinchilla", "L = E + A N^-alpha + B D^-beta"),
                     ("parametric", "L = E + (A N^-alpha + B D^-beta)^gamma")):
    f, boot = fit[name], fit[name].get("bootstrap")
    lines.append(f"{label} {name}: {form}  ({f['runs']} runs, huber {f['huber']:.3g})")
    lines += [_line(k, f[k], boot) for k in (PARAMETRIC if name == "parametric" else
                                             CHINCHILLA)]
  iso, boot = fit["isoflop"], fit["isoflop"].get("bootstrap")
  lines.append(f"{label} isoflop: N* = a C^b, D* = c C^d  ({len(iso['budgets'])} budgets)")
  lines += [_line(k, iso[k], boot) for k in ("a", "b", "c", "d")]
  lines += [f"    skipped budget C={s['C']:.3g} ({s['runs']} runs): {s['reason']}"
            for s in iso["skipped"]]
  lines += [f"    budget C={b['C']:.3g}: N* = {b['N_opt']:.3g} lies outside its runs' N "
            "(extrapolated)" for b in iso["budgets"] if not b["interior"]]
  return "\n".join(lines)


def plot_loss_vs_compute(runs: dict[str, dict], fits: dict[str, dict], path,
                         title: str | None = None) -> pathlib.Path:
  """Loss against training flops: every run, the IsoFLOP minima (stars, at their runs'
  geometric-mean flops) and the compute-optimal frontier of the Chinchilla (solid) and gamma
  (dashed) fits per family."""
  fig = Figure(figsize=(7, 4.5), layout="constrained")
  ax = fig.add_subplot()
  for i, (label, r) in enumerate(runs.items()):
    color, fit = f"C{i}", fits[label]
    ax.scatter(r["C"], r["L"], s=12, color=color, alpha=0.5, label=f"{label} runs")
    mins = fit["isoflop"]["budgets"]
    ax.scatter([_counted(r, b["C"]) for b in mins], [b["L_opt"] for b in mins], marker="*", s=90,
               color=color, edgecolor="black", linewidth=0.5, zorder=3,
               label=f"{label} IsoFLOP minima")
    C = _compute_range(r)
    for name, style in (("chinchilla", "-"), ("parametric", "--")):
      front = optimal_frontier(fit[name], C, _k(r))
      ax.plot(C, front["L"], style, color=color, linewidth=1.2,
              label=f"{label} {name} frontier (alpha {fit[name]['alpha']:.2f}, "
                    f"beta {fit[name]['beta']:.2f})")
  ax.set_xscale("log")
  ax.set_xlabel("training compute C (FLOPs)")
  ax.set_ylabel("loss")
  ax.set_title(title or "loss vs compute, with the compute-optimal frontier")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return save_figure(fig, path)


def plot_isoflop(runs: dict[str, dict], fits: dict[str, dict], path,
                 title: str | None = None) -> pathlib.Path:
  """Loss against params per compute budget (one panel per family): the runs, each budget's
  parabola in ln N and its minimum N*(C)."""
  fig = Figure(figsize=(6 * len(runs), 4.5), layout="constrained")
  axes = fig.subplots(1, len(runs), squeeze=False)[0]
  for ax, (label, r) in zip(axes, runs.items()):
    budgets = fits[label]["isoflop"]["budgets"]
    cmap = colormaps["viridis"]
    values = np.unique(r["budget"])
    for j, c in enumerate(values):
      color = cmap(j / max(len(values) - 1, 1))
      m = r["budget"] == c
      ax.scatter(r["N"][m], r["L"][m], s=14, color=color)
      fit = next((b for b in budgets if np.isclose(b["C"], c, rtol=1e-9)), None)
      if fit is None:  # a skipped budget: runs only
        continue
      x = np.linspace(np.log(r["N"][m].min()) - 0.2, np.log(r["N"][m].max()) + 0.2, 100)
      ax.plot(np.exp(x), np.polyval(fit["parabola"], x), color=color, linewidth=1,
              label=f"C = {c:.2g}: N* = {fit['N_opt']:.3g}")
      ax.scatter([fit["N_opt"]], [fit["L_opt"]], marker="*", s=90, color=color,
                 edgecolor="black", linewidth=0.5, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"{label}: IsoFLOP curves (stars: parabola minima)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  if title:
    fig.suptitle(title)
  return save_figure(fig, path)


def plot_optimal_scaling(runs: dict[str, dict], fits: dict[str, dict], path,
                         title: str | None = None) -> pathlib.Path:
  """Compute-optimal N*(C) and D*(C): the IsoFLOP minima (dots), their power laws a C^b and
  c C^d (solid) and the Chinchilla fit's frontier (dotted), per family."""
  fig = Figure(figsize=(11, 4.5), layout="constrained")
  ax_n, ax_d = fig.subplots(1, 2)
  for i, (label, r) in enumerate(runs.items()):
    color, iso = f"C{i}", fits[label]["isoflop"]
    C = _compute_range(r)
    front = optimal_frontier(fits[label]["chinchilla"], C, _k(r))
    for ax, opt, coef, exp, key in ((ax_n, "N_opt", "a", "b", "N"),
                                    (ax_d, "D_opt", "c", "d", "D")):
      ax.scatter([b["C"] for b in iso["budgets"]], [b[opt] for b in iso["budgets"]], s=25,
                 color=color, zorder=3)
      ax.plot(C, iso[coef] * C ** iso[exp], "-", color=color,
              label=f"{label} IsoFLOP: {exp} = {_pm(iso, exp)}")
      ax.plot(C, front[key], ":", color=color, label=f"{label} Chinchilla fit frontier")
  for ax, what in ((ax_n, "parameters N*"), (ax_d, "tokens D*")):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel(f"compute-optimal {what}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  ax_n.set_title("N*(C) = a C^b")
  ax_d.set_title("D*(C) = c C^d")
  if title:
    fig.suptitle(title)
  return save_figure(fig, path)
