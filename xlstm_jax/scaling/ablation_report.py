"""The ablation report: our gating and component sweeps beside the xLSTM paper's Table 2.

  python -m xlstm_jax.scaling.ablation_report --gating=runs/gating/results.jsonl \\
      --components=runs/ablations/results.jsonl --out=docs/results

writes OUT/ablations.md with OUT/ablations_gating.png (and OUT/ablations_components.png
when --components is given). The sweeps are configs/sweeps/gating.py (the paper's gating
rows on xLSTM[1:0]) and configs/sweeps/ablations.py (one change each from xlstm_tiny).
Each row's validation perplexity is the mean over its seeds, shown as the change against
the default row (both gates learned / the unchanged base) with the seeds' range, since
tiny CPU runs and the paper's 15B-token runs share trends, not values.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib

import jax
import numpy as np

from xlstm_jax.scaling import fit

# Table 2 (bottom) of Beck et al. 2024, arXiv 2405.04517: xLSTM[1:0] trained on 15B tokens
# of SlimPajama, validation perplexity. Keyed by (igate_mode, fgate_mode) as in
# configs/sweeps/gating.py: learned = input dependent + learnable bias, bias = learnable
# bias only, fixed = the bias frozen at its init (input 0, forget equidistant in [3, 6]).
PAPER_GATING = {
    ("fixed", "fixed"): ("No Gates", 13.95),
    ("fixed", "learned"): ("Forget Gate", 13.58),
    ("learned", "fixed"): ("Input Gate", 13.69),
    ("fixed", "bias"): ("Forget Gate Bias", 13.76),
    ("bias", "bias"): ("Forget + Input Gate Bias", 13.73),
    ("bias", "learned"): ("Forget Gate + Input Gate Bias", 13.55),
    ("learned", "learned"): ("Forget Gate + Input Gate", 13.43),
}
DEFAULT_GATES = ("learned", "learned")
# Table 2 (top): (modification, model, parameters in M, SlimPajama 15B perplexity).
PAPER_COMPONENTS = (
    ("Vanilla multi-layer LSTM", "LSTM", 607.8, 2417.86),
    ("Adding ResNet backbone", "LSTM", 506.1, 35.46),
    ("Adding up-projection backbone", "LSTM", 505.9, 26.01),
    ("Adding exponential gating", "xLSTM[0:1]", 427.3, 17.70),
    ("Adding matrix memory", "xLSTM[7:1]", 408.4, 13.48),
)


def load_results(path) -> list[dict]:
  """The runs of a sweep's results.jsonl, each checked as `fit.load_results` checks them
  (an empty file is an error there too)."""
  return fit.load_results(path)


def varied_keys(results: list[dict]) -> list[str]:
  """The override keys (other than the seed) whose values differ between the runs."""
  keys = sorted({k for r in results for k in r["overrides"]} - {"seed"})
  return [k for k in keys
          if len({json.dumps(r["overrides"].get(k)) for r in results}) > 1]


def by_setting(results: list[dict], keys: list[str]) -> dict[tuple, list[float]]:
  """{values of `keys`: [validation perplexity of each seed]}, in first-seen order."""
  groups: dict[tuple, list[float]] = {}
  for r in results:
    key = tuple(json.dumps(r["overrides"].get(k)) for k in keys)
    groups.setdefault(key, []).append(math.exp(r["loss"]))
  return groups


def _change(ppl: float, ref: float) -> float:
  return 100.0 * (ppl / ref - 1.0)


def gating_rows(results: list[dict]) -> list[dict]:
  """One row per (igate_mode, fgate_mode) with ours and the paper's perplexity."""
  keys = ["model.igate_mode", "model.fgate_mode"]
  groups = {tuple(json.loads(v) for v in k): ppl
            for k, ppl in by_setting(results, keys).items()}
  unknown = sorted(set(groups) - set(PAPER_GATING))
  if unknown:
    raise ValueError(f"gate settings {unknown} have no row in the paper's table; "
                     f"known: {sorted(PAPER_GATING)}")
  if DEFAULT_GATES not in groups:
    raise ValueError(f"the results lack the default row {DEFAULT_GATES} to compare against")
  ref, paper_ref = float(np.mean(groups[DEFAULT_GATES])), PAPER_GATING[DEFAULT_GATES][1]
  rows = []
  for gates in PAPER_GATING:   # the paper's row order
    if gates in groups:
      ppl = groups[gates]
      rows.append({"row": PAPER_GATING[gates][0], "igate_mode": gates[0],
                   "fgate_mode": gates[1], "ppl": float(np.mean(ppl)), "seeds": len(ppl),
                   "change": _change(float(np.mean(ppl)), ref),
                   "change_range": (_change(min(ppl), ref), _change(max(ppl), ref)),
                   "paper_ppl": PAPER_GATING[gates][1],
                   "paper_change": _change(PAPER_GATING[gates][1], paper_ref)})
  return rows


def component_rows(results: list[dict]) -> list[dict]:
  """One row per setting of a one-factor sweep; the first setting is the base. A row that
  changes several things is also set against the row changing the most of them alone
  ("against", "change_vs"), e.g. igate=sigmoid + normalizer=none against igate=sigmoid."""
  keys = varied_keys(results)
  groups = by_setting(results, keys)
  base = next(iter(groups))
  ref = float(np.mean(groups[base]))
  rows = []
  for key, ppl in groups.items():
    changed = [f"{k.removeprefix('model.')}={json.loads(v)}" for k, v, b in
               zip(keys, key, base) if v != b]
    rows.append({"change_name": ", ".join(changed) or "base (unchanged)",
                 "changed": set(changed), "ppl": float(np.mean(ppl)), "seeds": len(ppl),
                 "change": _change(float(np.mean(ppl)), ref)})
  for row in rows:
    nested = [r for r in rows if r["changed"] and r["changed"] < row["changed"]]
    if nested:
      closest = max(nested, key=lambda r: len(r["changed"]))
      row["against"] = closest["change_name"]
      row["change_vs"] = _change(row["ppl"], closest["ppl"])
  for row in rows:
    del row["changed"]
  return rows


def rank_correlation(a, b) -> float:
  """Spearman's rank correlation of two equally long sequences (no ties expected)."""
  ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
  return float(np.corrcoef(ra, rb)[0, 1])


def plot_gating(rows: list[dict], path=None):
  """Horizontal bars: change against the default row, ours (seed range) and the paper's.
  Returns the matplotlib Figure (saved to `path` when given)."""
  from matplotlib.figure import Figure  # noqa: PLC0415 (plots only when asked)

  from xlstm_jax.plotting import save_figure  # noqa: PLC0415
  fig = Figure(figsize=(8, 0.55 * len(rows) + 1.6), layout="constrained")
  ax = fig.subplots()
  y = np.arange(len(rows))
  ours = [r["change"] for r in rows]
  low = [r["change"] - r["change_range"][0] for r in rows]
  high = [r["change_range"][1] - r["change"] for r in rows]
  ax.barh(y - 0.2, ours, 0.4, xerr=[low, high], label="ours (mean, seed range)")
  ax.barh(y + 0.2, [r["paper_change"] for r in rows], 0.4, label="paper (Table 2)")
  ax.set_yticks(y, [f"{r['row']}\n(i: {r['igate_mode']}, f: {r['fgate_mode']})"
                    for r in rows], fontsize=8)
  ax.invert_yaxis()
  ax.axvline(0, color="k", lw=0.8)
  ax.set_xlabel("validation perplexity vs both gates learned (%)")
  ax.set_title("Gating ablation, xLSTM[1:0]")
  ax.grid(axis="x", alpha=0.3)
  ax.legend(fontsize=8)
  if path is not None:
    save_figure(fig, path, dpi=110)
  return fig


def plot_components(rows: list[dict], path=None):
  """Horizontal bars: change of each one-factor ablation against the base. Returns the
  matplotlib Figure (saved to `path` when given)."""
  from matplotlib.figure import Figure  # noqa: PLC0415

  from xlstm_jax.plotting import save_figure  # noqa: PLC0415
  fig = Figure(figsize=(8, 0.45 * len(rows) + 1.4), layout="constrained")
  ax = fig.subplots()
  y = np.arange(len(rows))
  ax.barh(y, [r["change"] for r in rows], 0.6,
          color=["tab:gray" if r["change"] == 0 else "tab:blue" for r in rows])
  ax.set_yticks(y, [r["change_name"] for r in rows], fontsize=8)
  ax.invert_yaxis()
  ax.axvline(0, color="k", lw=0.8)
  ax.set_xlabel("validation perplexity vs the base (%)")
  ax.set_title("One-factor ablations of xlstm_tiny")
  ax.grid(axis="x", alpha=0.3)
  if path is not None:
    save_figure(fig, path, dpi=110)
  return fig


def _settings(results: list[dict]) -> str:
  o = results[0]["overrides"]
  low, high = min(r["params"] for r in results), max(r["params"] for r in results)
  params = f"{low:,}" if low == high else f"{low:,} to {high:,}"
  return (f"{params} parameters, {o.get('num_steps')} steps of "
          f"{o.get('batch_size')} x {o.get('seq_len')} tokens")


def gating_table(rows: list[dict]) -> list[str]:
  """The gating rows as a markdown table, ours beside the paper's."""
  lines = ["| paper's row | input gate | forget gate | ours: ppl | ours: change (seed range) "
           "| paper: ppl | paper: change |", "|---|---|---|---:|---:|---:|---:|"]
  for r in rows:
    lo, hi = r["change_range"]
    lines.append(f"| {r['row']} | {r['igate_mode']} | {r['fgate_mode']} | {r['ppl']:.3f} | "
                 f"{r['change']:+.2f}% ({lo:+.2f}..{hi:+.2f}) | {r['paper_ppl']:.2f} | "
                 f"{r['paper_change']:+.2f}% |")
  return lines


def component_table(rows: list[dict]) -> list[str]:
  """The one-factor rows as a markdown table."""
  def nested(r):
    return f"{r['change_vs']:+.2f}% vs {r['against']}" if "against" in r else ""
  return (["| change | ppl | change vs base | change vs a nested row |", "|---|---:|---:|---|"]
          + [f"| {r['change_name']} | {r['ppl']:.3f} | {r['change']:+.2f}% | {nested(r)} |"
             for r in rows])


def seed_spread(rows: list[dict]) -> float:
  """The default row's seed-to-seed spread (%): the largest |change| of its seeds."""
  default = next(r for r in rows if (r["igate_mode"], r["fgate_mode"]) == DEFAULT_GATES)
  return max(abs(x) for x in default["change_range"])


def gating_lines(results: list[dict], rows: list[dict]) -> list[str]:
  """The gating section of the report: settings, the table and what it shows."""
  seeds = sorted({r["overrides"].get("seed", 0) for r in results})
  lines = [f"xLSTM[1:0] ({_settings(results)}; seeds {seeds}), validation perplexity on the "
           "default corpus's held-out documents. Change: against \"both gates learned\" "
           "(ours: mean over seeds, with the range of the seeds).", "", *gating_table(rows)]
  rho = rank_correlation([r["ppl"] for r in rows], [r["paper_ppl"] for r in rows])
  best = min(rows, key=lambda r: r["ppl"])
  worst = max(rows, key=lambda r: r["ppl"])
  spread = seed_spread(rows)
  lines += ["", "![gating](ablations_gating.png)", "",
            f"- Rank correlation (Spearman) of our perplexities with the paper's over these "
            f"{len(rows)} rows: {rho:+.2f} (1: the same order).",
            f"- Best row here: {best['row']}; worst: {worst['row']} (the paper: "
            f"{PAPER_GATING[DEFAULT_GATES][0]} best, No Gates worst).",
            f"- Seed-to-seed spread of the default row: ±{spread:.2f}%; differences below "
            "the spreads are not separated by these runs."]
  return lines


def write_report(gating, out, components=None) -> pathlib.Path:
  """Writes OUT/ablations.md and its plots from the sweeps' results.jsonl files."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  results = load_results(gating)
  rows = gating_rows(results)
  plot_gating(rows, out / "ablations_gating.png")
  lines = ["# Ablations: gating and components against the xLSTM paper's Table 2", "",
           f"Written by `python -m xlstm_jax.scaling.ablation_report` on "
           f"{datetime.date.today()} (jax {jax.__version__}, CPU). The paper's figures are "
           "for orientation: its models have ~400M parameters trained on 15B tokens; ours "
           "are CPU-sized. Compare the order and the sign of the changes, not the values.",
           "", "## Gating (Table 2, bottom)", "", *gating_lines(results, rows),
           "- The paper's first row, a forget gate fixed at +inf (no forgetting), gave NaN "
           "there and has no counterpart here."]
  if components is not None:
    comp_results = load_results(components)
    comp = component_rows(comp_results)
    plot_components(comp, out / "ablations_components.png")
    lines += ["", "## Components (one change at a time)", "",
              f"xlstm_tiny ({_settings(comp_results)}; one seed): mLSTM blocks with one "
              "sLSTM block. `slstm_at=()` is xLSTM[1:0] (pre up-projection blocks only), "
              "`slstm_at=(0, 1, 2, 3)` is xLSTM[0:1] (post up-projection blocks only).", "",
              *component_table(comp)]
    spread = seed_spread(rows)
    lines += ["", "![components](ablations_components.png)", "",
              f"- One seed per row: the gating sweep's seed range for its default row "
              f"(±{spread:.2f}%) is the yardstick; changes smaller than that are not "
              "separated by these runs."]
    stabilizer = next((r for r in comp if r["change_name"] == "stabilize=False"), None)
    if stabilizer is not None:
      lines.append(f"- `stabilize=False` lands {stabilizer['change']:+.4f}% from the base: "
                   "the stabilizer rescales the states by exp(-m) without changing what the "
                   "cell computes; it guards against overflow of exp, which runs this small "
                   "do not reach (tests/test_mlstm_forms.py::test_unstabilized_overflow_is_loud "
                   "shows where it does).")
    lines += ["", "The paper's component ablation (Table 2, top) for orientation:", "",
              "| modification | model | params (M) | SlimPajama 15B ppl |", "|---|---|---:|---:|"]
    lines += [f"| {m} | {model} | {n} | {p} |" for m, model, n, p in PAPER_COMPONENTS]
    lines += ["", "Its steps that our rows mirror: exponential gating (our `igate=sigmoid` "
              "row undoes it) and the matrix memory (our xLSTM[0:1] row removes it)."]
  path = out / "ablations.md"
  path.write_text("\n".join(lines) + "\n")
  return path


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gating", required=True,
                      help="results.jsonl of the gating sweep (configs/sweeps/gating.py)")
  parser.add_argument("--components", default=None,
                      help="results.jsonl of the one-factor sweep (configs/sweeps/ablations.py)")
  parser.add_argument("--out", required=True, help="directory for ablations.md and the PNGs")
  args = parser.parse_args(argv)
  try:
    print(f"wrote {write_report(args.gating, args.out, args.components)}")
  except (ValueError, FileNotFoundError) as err:
    parser.error(str(err))


if __name__ == "__main__":
  main()
