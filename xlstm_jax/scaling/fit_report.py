"""The scaling-law fit's report and CLI: fits every model family of a results.jsonl
(`fit.fit_family`), writes DIR/fit.json and the PNG plots (`fit_plots`), prints the summary.

  python -m xlstm_jax.scaling.fit_report --results=runs/ladder/results.jsonl --out=runs/ladder/fit
"""

from __future__ import annotations

import argparse
import json
import pathlib
from collections.abc import Sequence

from xlstm_jax.scaling import fit, fit_plots


def main(argv: Sequence[str] | None = None) -> dict:
  """CLI: fits every model family of a results.jsonl, writes DIR/fit.json and the PNG
  plots, prints the constants and exponents with their uncertainty; returns the fits."""
  parser = argparse.ArgumentParser(
      prog="python -m xlstm_jax.scaling.fit_report",
      formatter_class=argparse.ArgumentDefaultsHelpFormatter,
      description="Fit scaling laws to training runs: the Chinchilla form "
                  "L = E + A N^-alpha + B D^-beta and L = E + (A N^-alpha + B D^-beta)^gamma "
                  "by a Huber loss in log space (Hoffmann et al. 2022, Approach 3), and "
                  "IsoFLOP parabolas giving N*(C) = a C^b and D*(C) = c C^d (Approach 2), "
                  "with bootstrap uncertainty. Writes DIR/fit.json (keyed by family when the "
                  "runs carry several 'model' labels, each fitted on its own) and "
                  "loss_vs_compute.png, isoflop.png, optimal_scaling.png.")
  parser.add_argument("--results", required=True,
                      help="results.jsonl: one JSON object per run with params (N), tokens "
                           "(D), flops (C), loss, overrides (dict); optional model (family "
                           "label) and budget (the run's IsoFLOP budget in flops)")
  parser.add_argument("--out", required=True, help="folder for fit.json and the PNG plots")
  parser.add_argument("--bootstrap", type=int, default=100,
                      help="bootstrap resamples per fit (0: no uncertainty)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
  parser.add_argument("--family", default=None,
                      help="fit only this family (a run's 'model' label, or its 'arch')")
  parser.add_argument("--rtol", type=float, default=0.2,
                      help="runs without 'budget' share an IsoFLOP budget when their flops "
                           "are within this relative tolerance")
  parser.add_argument("--delta", type=float, default=1e-3, help="Huber loss threshold")
  args = parser.parse_args(argv)
  if args.bootstrap < 0 or args.bootstrap == 1:
    parser.error(f"--bootstrap={args.bootstrap}, expected 0 (none) or at least 2 resamples")
  try:
    rows = fit.load_results(args.results)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  families: dict[str, list[dict]] = {}
  for r in rows:
    families.setdefault(fit.family_of(r), []).append(r)
  if args.family is not None:
    if args.family not in families:
      parser.error(f"--family={args.family!r} has no runs; the results hold {sorted(families)}")
    families = {args.family: families[args.family]}
  fits, runs = {}, {}
  for label, fam in families.items():
    try:
      fits[label] = fit.fit_family(fam, args.bootstrap, args.seed, args.rtol, args.delta)
      N, D, C, L = fit.columns(fam)
      runs[label] = {"N": N, "D": D, "C": C, "L": L, "budget": fit.budget_labels(fam, args.rtol)}
    except ValueError as e:
      parser.error(f"family {label!r} ({len(fam)} runs): {e}")
    print(fit_plots.summary(label, fits[label]))
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  result = next(iter(fits.values())) if len(fits) == 1 else fits
  (out / "fit.json").write_text(json.dumps(result, indent=1) + "\n")
  paths = [fit_plots.plot_loss_vs_compute(runs, fits, out / "loss_vs_compute.png"),
           fit_plots.plot_isoflop(runs, fits, out / "isoflop.png"),
           fit_plots.plot_optimal_scaling(runs, fits, out / "optimal_scaling.png")]
  print(f"wrote {out / 'fit.json'}, " + ", ".join(str(p) for p in paths))
  return result


if __name__ == "__main__":
  main()
