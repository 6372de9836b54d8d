"""Scaling-law fits against synthetic runs drawn from a known law (seeded noise): parametric
L(N, D) fits, IsoFLOP optima, bootstrap intervals, the CLI and its errors."""

import functools
import json
import re

import numpy as np
import pytest

from xlstm_jax.scaling import fit as F
from xlstm_jax.scaling import fit_report

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
GAMMA = {"E": 1.69, "A": 100.0, "B": 120.0, "alpha": 0.34, "beta": 0.28, "gamma": 1.3}
NOISE = 1e-3  # multiplicative (log-normal) noise on the loss


def _grid_runs(law: dict, seed: int):
  """48 runs on an (N, D) grid: N in 1e7..1e9, D in 1e8..1e11."""
  rng = np.random.default_rng(seed)
  N = np.repeat(np.geomspace(1e7, 1e9, 8), 6)
  D = np.tile(np.geomspace(1e8, 1e11, 6), 8)
  return N, D, F.predict_loss(law, N, D) * np.exp(rng.normal(0, NOISE, N.size))


def _n_opt(law: dict, C):
  """Analytic compute-optimal N of the Chinchilla form with D = C / (6 N)."""
  a, b = law["alpha"], law["beta"]
  return (a * law["A"] / (b * law["B"])) ** (1 / (a + b)) * (C / 6) ** (b / (a + b))


def _isoflop_runs(law: dict, seed: int, noise: float, budgets=(1e17, 1e18, 1e19, 1e20)):
  """Runs on IsoFLOP grids: 7 N per budget over a factor 16, centred off the optimum by 1.3x,
  D = C / (6 N)."""
  rng = np.random.default_rng(seed)
  N = np.concatenate([_n_opt(law, C) * 1.3 * np.geomspace(1 / 4, 4, 7) for C in budgets])
  C = np.repeat(budgets, 7).astype(float)
  D = C / (6 * N)
  return N, D, C, F.predict_loss(law, N, D) * np.exp(rng.normal(0, noise, N.size))


# Seed 1: a typical draw. A 90% bootstrap interval misses the truth in about one draw in ten;
# seed 0's Chinchilla E is such a draw (2.3 sampling std off: E spreads by 0.006 over 20
# seeds, its bootstrap std is 0.003..0.007). Recovery itself holds on seeds 0..9.
@pytest.fixture(scope="module")
def chinchilla():
  data = _grid_runs(CHINCHILLA, seed=1)
  return data, F.fit_parametric(*data, gamma_free=False)


@pytest.fixture(scope="module")
def gamma():
  data = _grid_runs(GAMMA, seed=1)
  return data, F.fit_parametric(*data, gamma_free=True)


def _check_recovery(fit: dict, law: dict, N, D):
  # Exponents within 0.02 and E within 2%. A and B within 25%: ln A trades off against
  # alpha ln N (ln N ~ 18 here), so an exponent off by 0.01 moves A by ~20%.
  for k in ("alpha", "beta"):
    assert abs(fit[k] - law[k]) < 0.02, (k, fit[k])
  assert fit["E"] == pytest.approx(law["E"], rel=0.02)
  for k in ("A", "B"):
    assert fit[k] == pytest.approx(law[k], rel=0.25), (k, fit[k])
  # The fitted law itself matches the true one to well under the loss's spread.
  np.testing.assert_allclose(F.predict_loss(fit, N, D), F.predict_loss(law, N, D), rtol=2e-3)


def test_chinchilla_fit_recovers_the_law(chinchilla):
  (N, D, L), fit = chinchilla
  assert set(fit) == {"E", "A", "B", "alpha", "beta", "huber", "runs"} and fit["runs"] == 48
  _check_recovery(fit, CHINCHILLA, N, D)


def test_gamma_fit_recovers_the_law(gamma):
  (N, D, L), fit = gamma
  _check_recovery(fit, GAMMA, N, D)
  assert abs(fit["gamma"] - GAMMA["gamma"]) < 0.05


@pytest.mark.parametrize("which", ["chinchilla", "gamma"])
def test_bootstrap_intervals_contain_the_truth(which, request):
  (N, D, L), best = request.getfixturevalue(which)
  law, gamma_free = (CHINCHILLA, False) if which == "chinchilla" else (GAMMA, True)
  refit = functools.partial(F.fit_parametric, gamma_free=gamma_free, inits=F._theta(best))
  boot = F.bootstrap(refit, (N, D, L), n=30, seed=0, keys=list(law))
  assert boot["samples"] + boot["failed"] == 30 and boot["seed"] == 0
  for k, true in law.items():
    assert boot[k]["p05"] <= true <= boot[k]["p95"], (k, true, boot[k])
    assert boot[k]["std"] > 0


def test_bootstrap_resamples_within_groups():
  x, groups = np.arange(10.0), np.array([0] * 5 + [1] * 5)
  seen = []
  F.bootstrap(lambda v, g: seen.append((v, g)) or {"m": float(v.mean())}, (x, groups), n=5,
              groups=groups)
  for v, g in seen:
    assert np.all(v[g == 0] < 5) and np.all(v[g == 1] >= 5) and np.sum(g == 0) == 5


def test_isoflop_recovers_the_known_optimum():
  N, D, C, L = _isoflop_runs(CHINCHILLA, seed=0, noise=0.0)
  iso = F.fit_isoflop(N, D, C, L)
  a, b = CHINCHILLA["alpha"], CHINCHILLA["beta"]
  assert len(iso["budgets"]) == 4 and not iso["skipped"]
  for r in iso["budgets"]:
    n_opt = _n_opt(CHINCHILLA, r["C"])
    assert r["N_opt"] == pytest.approx(n_opt, rel=0.03) and r["interior"]
    assert r["D_opt"] == pytest.approx(r["C"] / (6 * n_opt), rel=0.03)
  assert abs(iso["b"] - b / (a + b)) < 0.005
  assert abs(iso["d"] - a / (a + b)) < 0.005
  assert iso["a"] * 1e19 ** iso["b"] == pytest.approx(_n_opt(CHINCHILLA, 1e19), rel=0.03)


def test_isoflop_bootstrap_contains_the_exponent():
  N, D, C, L = _isoflop_runs(CHINCHILLA, seed=2, noise=2e-3)
  jitter = C * np.random.default_rng(0).uniform(0.97, 1.03, C.size)  # grouped by rtol
  budget = F.group_budgets(jitter)
  assert len(np.unique(budget)) == 4
  boot = F.bootstrap(F.fit_isoflop, (N, D, jitter, L, budget), n=40, seed=0,
                     keys=("b", "d"), groups=budget)
  a, b = CHINCHILLA["alpha"], CHINCHILLA["beta"]
  assert boot["b"]["p05"] <= b / (a + b) <= boot["b"]["p95"], boot["b"]
  assert boot["d"]["p05"] <= a / (a + b) <= boot["d"]["p95"], boot["d"]


def test_optimal_frontier_matches_the_closed_form():
  front = F.optimal_frontier(CHINCHILLA, [1e18, 1e21], k=6.0)
  np.testing.assert_allclose(front["N"], _n_opt(CHINCHILLA, np.array([1e18, 1e21])), rtol=1e-4)
  np.testing.assert_allclose(front["C"], 6 * front["N"] * front["D"])


def _write(path, rows):
  path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
  return str(path)


def _rows(model, scale: float, seed: int):
  """results.jsonl rows of 3 IsoFLOP budgets; `model` a label, a sweep.py dict or None."""
  N, D, C, L = _isoflop_runs(CHINCHILLA, seed, noise=2e-3, budgets=(1e17, 1e18, 1e19))
  return [{"params": n, "tokens": d, "flops": c, "loss": l * scale, "overrides": {"i": i}}
          | ({"model": model} if model else {}) for i, (n, d, c, l) in enumerate(zip(N, D, C, L))]


def test_cli_fits_each_family_and_writes_json_and_plots(tmp_path, capsys):
  llama = {"arch": "llama", "blocks": "lll"}  # as sweep.py writes it: the family is the arch
  results = _write(tmp_path / "results.jsonl", _rows("xlstm", 1.0, 0) + _rows(llama, 1.04, 1))
  out = tmp_path / "out"
  fit_report.main(["--results", results, "--out", str(out), "--bootstrap", "4", "--seed", "3"])
  printed = capsys.readouterr().out
  assert "xlstm chinchilla" in printed and "llama isoflop" in printed and "+-" in printed
  fit = json.loads((out / "fit.json").read_text())
  assert set(fit) == {"xlstm", "llama"}
  for fam in fit.values():
    assert set(fam) == {"chinchilla", "parametric", "isoflop"}
    assert {"E", "A", "B", "alpha", "beta", "bootstrap"} <= set(fam["chinchilla"])
    assert "gamma" in fam["parametric"] and "gamma" not in fam["chinchilla"]
    assert {"a", "b", "c", "d", "budgets", "skipped", "bootstrap"} <= set(fam["isoflop"])
    assert set(fam["chinchilla"]["bootstrap"]["alpha"]) == {"std", "p05", "p95"}
    assert fam["isoflop"]["bootstrap"]["seed"] == 3 and len(fam["isoflop"]["budgets"]) == 3
  for png in ("loss_vs_compute.png", "isoflop.png", "optimal_scaling.png"):
    assert (out / png).stat().st_size > 10_000

  fit_report.main(["--results", results, "--out", str(out), "--bootstrap", "0", "--family", "llama"])
  one = json.loads((out / "fit.json").read_text())
  assert set(one) == {"chinchilla", "parametric", "isoflop"}  # one family: no nesting
  assert set(one["chinchilla"]) == {"E", "A", "B", "alpha", "beta", "huber", "runs"}


def test_cli_help_explains(capsys):
  with pytest.raises(SystemExit) as e:
    fit_report.main(["--help"])
  assert e.value.code == 0
  text = capsys.readouterr().out
  assert "IsoFLOP" in text and "--bootstrap" in text and "fit.json" in text


@pytest.mark.parametrize("line, match", [
    ('{"name": "r2", "params": 1e7, "tokens": 1e9, "flops": 6e16, "overrides": {}}',
     r":2 \(run 'r2'\) has no 'loss'"),
    ('{"params": 1e7, "tokens": 1e9, "flops": 6e16, "loss": 3, "overrides": {}, "model": 1}',
     r":2: model=1, expected a family label"),
    ('{"params": 1e7, "tokens": 1e9, "flops": 6e16, "loss": 0, "overrides": {}}',
     r":2: loss=0, expected a positive finite number"),
    ('{"params": -5, "tokens": 1e9, "flops": 6e16, "loss": 3, "overrides": {}}',
     r"params=-5"),
    ('{"params": 1e7, "tokens": 1e9, "flops": 6e16, "loss": 3, "overrides": []}',
     r"overrides=\[\], expected a JSON object"),
    ('{"params": 1e7,', r":2 is not valid JSON"),
    ("[1, 2]", r":2 holds a list, expected a JSON object")])
def test_load_results_names_the_bad_row_and_key(tmp_path, line, match):
  good = '{"params": 1e7, "tokens": 1e9, "flops": 6e16, "loss": 3.0, "overrides": {}}'
  path = tmp_path / "results.jsonl"
  path.write_text(good + "\n" + line + "\n")
  with pytest.raises(ValueError, match=match):
    F.load_results(path)


def test_errors_for_missing_file_and_too_few_runs(tmp_path, capsys):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    F.load_results(tmp_path / "nope.jsonl")
  N, D, L = (np.array(v[:5]) for v in _grid_runs(CHINCHILLA, 0))
  with pytest.raises(ValueError, match="5 runs are too few; it needs at least 6"):
    F.fit_parametric(N, D, L)
  with pytest.raises(ValueError, match="too few; it needs at least 7"):
    F.fit_parametric(*(np.append(v, v[0]) for v in (N, D, L)), gamma_free=True)
  with pytest.raises(ValueError, match="non-positive"):
    F.fit_parametric(N, D, np.append(L[:-1], 0.0))
  N, D, C, L = (v[:9] for v in _isoflop_runs(CHINCHILLA, 0, 0.0))  # 7 + 2 runs
  with pytest.raises(ValueError, match="1 usable budgets, it needs at least 2"):
    F.fit_isoflop(N, D, C, L)
  with pytest.raises(ValueError, match="expected a positive finite number"):
    F.load_results(_write(tmp_path / "r.jsonl", [{**_rows(None, 1, 0)[0], "budget": 0}]))
  rows = _rows(None, 1, 0)
  with pytest.raises(ValueError, match="1 of 21 runs have a 'budget' field: give it on every"):
    F.budget_labels([{**rows[0], "budget": 1e17}, *rows[1:]])
  np.testing.assert_array_equal(F.budget_labels([{**r, "budget": 5.0} for r in rows]), 5.0)

  results = _write(tmp_path / "few.jsonl", _rows("xlstm", 1.0, 0)[:4])
  for argv, match in ((["--results", str(tmp_path / "nope.jsonl")], "does not exist"),
                      (["--results", results], "family 'xlstm' .4 runs.: .*at least 6"),
                      (["--results", results, "--family", "llama"], "results hold \\['xlstm'\\]")):
    with pytest.raises(SystemExit) as e:
      fit_report.main(argv + ["--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err), match


def test_isoflop_stars_sit_at_their_runs_counted_flops():
  from xlstm_jax.scaling.fit_plots import _counted  # noqa: PLC0415
  runs = {"C": np.array([1.0e17, 4.0e17, 1.2e18, 1.2e18]),
          "budget": np.array([1e17, 1e17, 1e18, 1e18])}
  assert _counted(runs, 1e17) == pytest.approx(2e17)     # geometric mean of 1e17 and 4e17
  assert _counted(runs, 1e18) == pytest.approx(1.2e18)
  assert _counted(runs, 5e18) == 5e18                     # no runs: the budget itself
