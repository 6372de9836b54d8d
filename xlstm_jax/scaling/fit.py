"""Scaling-law fits of training runs: the parametric loss L(N, D) (Hoffmann et al. 2022,
Approach 3) and IsoFLOP parabolas (their Approach 2), with bootstrap uncertainty.

  python -m xlstm_jax.scaling.fit_report --results results.jsonl --out DIR [--bootstrap 100]

  rows = load_results("results.jsonl")          # validated rows, one per run
  N, D, C, L = columns(rows)                    # params, tokens, flops, loss
  fit_parametric(N, D, L, gamma_free=False)     # Chinchilla: L = E + A N^-alpha + B D^-beta
  fit_parametric(N, D, L, gamma_free=True)      # L = E + (A N^-alpha + B D^-beta)^gamma
  fit_isoflop(N, D, C, L)                       # N*(C) = a C^b, D*(C) = c C^d
  bootstrap(fit, (N, D, L), n=100, seed=0)      # std and 5/95 percentiles per parameter

Parametric fits minimise sum Huber_delta(log L_hat - log L) with L-BFGS-B, where log L_hat =
logaddexp(e, gamma * logaddexp(a - alpha log N, b - beta log D)), A, B, E = exp(a), exp(b),
exp(e) (gamma = 1: Chinchilla's LSE). The objective is screened over Hoffmann's grid of
initialisations (`init_grid`) at once, the `top_k` best are refined (alpha, beta in [0, 10],
gamma in [0.001, 10]) and the best optimum kept. IsoFLOP fits group runs by budget, fit loss
against ln N per budget with a parabola whose vertex is N*(C), and take D*(C) from a line of
ln D against ln N through the budget's runs, at ln N*: on an exact IsoFLOP grid
(D = C / (k N)) that is C / (k N*), and where k drifts with N (mixing FLOPs weigh more in
small models) it follows the runs instead of assuming one k. Bootstrap: runs resampled with
replacement (within each budget for IsoFLOP), parametric refits started from the best optimum.

A run's family is its "model" label (or the "arch" of a "model" dict, as sweep.py writes it).
fit.json, for one family (with several: {"<family>": <this>, ...}, each fitted on its own):
  {"chinchilla": {"E", "A", "B", "alpha", "beta", "huber", "runs", "bootstrap"},
   "parametric": {... the same, and "gamma"},
   "isoflop": {"a", "b", "c", "d", "budgets": [{"C", "runs", "N_opt", "D_opt", "L_opt",
               "parabola", "interior"}], "skipped": [{"C", "runs", "reason"}], "bootstrap"}}
  "bootstrap" (none with --bootstrap 0): {"samples", "failed", "seed",
                                          "<parameter>": {"std", "p05", "p95"}, ...}
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import json
import math
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
import scipy
from scipy import optimize, special

REQUIRED = ("params", "tokens", "flops", "loss", "overrides")
_POSITIVE = ("params", "tokens", "flops", "loss")
CHINCHILLA = ("E", "A", "B", "alpha", "beta")
PARAMETRIC = CHINCHILLA + ("gamma",)


def load_results(path) -> list[dict]:
  """The runs of a results.jsonl (one JSON object per line; blank lines skipped), each
  checked to carry positive finite params, tokens, flops, loss and an overrides dict."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"results file {str(path)!r} does not exist")
  rows = []
  for lineno, line in enumerate(path.read_text().splitlines(), start=1):
    if not line.strip():
      continue
    where = f"{path}:{lineno}"
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{where} is not valid JSON ({e.msg}): {line[:80]!r}") from None
    if not isinstance(row, dict):
      raise ValueError(f"{where} holds a {type(row).__name__}, expected a JSON object")
    if isinstance(row.get("name"), str):
      where += f" (run {row['name']!r})"
    for key in REQUIRED:
      if key not in row:
        raise ValueError(f"{where} has no {key!r} (it has {sorted(row)}); every row needs "
                         f"{', '.join(REQUIRED)}")
    for key in _POSITIVE + (("budget",) if "budget" in row else ()):
      v = row[key]
      if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
          or v <= 0):
        raise ValueError(f"{where}: {key}={v!r}, expected a positive finite number")
    if not isinstance(row["overrides"], dict):
      raise ValueError(f"{where}: overrides={row['overrides']!r}, expected a JSON object")
    model = row.get("model", "runs")
    if not isinstance(model.get("arch") if isinstance(model, dict) else model, str):
      raise ValueError(f"{where}: model={model!r}, expected a family label or a dict with "
                       "an 'arch' label")
    rows.append(row)
  if not rows:
    raise ValueError(f"results file {str(path)!r} holds no runs")
  return rows


def family_of(row: dict) -> str:
  """A run's model family: its "model" label, the "arch" of a "model" dict (as sweep.py
  writes it), or "runs" when it has none."""
  model = row.get("model", "runs")
  return model["arch"] if isinstance(model, dict) else model


def columns(rows: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(N, D, C, L): params, tokens, flops and loss of the runs as float64 arrays."""
  return tuple(np.array([float(r[k]) for r in rows]) for k in _POSITIVE)


def _check(name: str, n_fit: int, need: int, **arrays) -> list[np.ndarray]:
  """The arrays as float64, checked equal length, positive and at least `need` long."""
  out = [np.asarray(a, dtype=np.float64) for a in arrays.values()]
  if len({a.shape for a in out}) != 1 or out[0].ndim != 1:
    raise ValueError(f"{name}: {', '.join(f'{k}.shape={a.shape}' for k, a in zip(arrays, out))}"
                     ", expected 1-D arrays of one length")
  for k, a in zip(arrays, out):
    bad = ~(np.isfinite(a) & (a > 0))
    if bad.any():
      raise ValueError(f"{name}: {k} has non-positive or non-finite values {a[bad][:5]}")
  if n_fit < need:
    raise ValueError(f"{name}: {n_fit} runs are too few; it needs at least {need}")
  return out


def init_grid(gamma_free: bool) -> np.ndarray:
  """Hoffmann et al.'s grid of initialisations (a, b, e, alpha, beta[, gamma]): a, b in
  0..25 by 5, e in -1..1 by 0.5, alpha, beta in 0..2 by 0.5 (gamma in 0.5, 1, 2)."""
  axes = [np.arange(0, 26, 5.0), np.arange(0, 26, 5.0), np.arange(-1, 1.01, 0.5),
          np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5)]
  if gamma_free:
    axes.append(np.array([0.5, 1.0, 2.0]))
  return np.array(list(itertools.product(*axes)))


@contextlib.contextmanager
def _one_blas_thread():
  """Runs the block with scipy's OpenBLAS on one thread: scipy >= 1.15's L-BFGS-B makes tiny
  BLAS calls, and idle OpenBLAS threads spinning against the caller made these fits 30x
  slower on a busy machine (scipy/scipy#22438). A no-op where that library is not found."""
  libs = sorted((pathlib.Path(scipy.__file__).parent.parent / "scipy.libs").glob(
      "libscipy_openblas*.so*"))
  lib = ctypes.CDLL(str(libs[0])) if libs else None  # already loaded: the same handle
  if lib is None or not hasattr(lib, "scipy_openblas_set_num_threads"):
    yield
    return
  threads = lib.scipy_openblas_get_num_threads()
  lib.scipy_openblas_set_num_threads(1)
  try:
    yield
  finally:
    lib.scipy_openblas_set_num_threads(threads)


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
  return np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))


def _log_loss(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray):
  """log L_hat and its pieces for parameters theta (..., 5 or 6) over runs (n,)."""
  a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
  g = theta[..., 5, None] if theta.shape[-1] == 6 else 1.0
  u, v = a - alpha * logN, b - beta * logD
  s = np.logaddexp(u, v)
  return np.logaddexp(e, g * s), (u, v, s, g, e)


def _objective(theta: np.ndarray, logN, logD, logL, delta: float):
  """sum Huber(log L_hat - log L) / delta^2 (scaled so L-BFGS-B's tolerances bite) and its
  gradient in theta."""
  p, (u, v, s, g, e) = _log_loss(theta, logN, logD)
  r = p - logL
  psi = np.clip(r, -delta, delta) / delta**2
  w_t = special.expit(g * s - e)  # d log L_hat / d (gamma s)
  w_u = special.expit(u - v)
  gu, gv = w_t * g * w_u, w_t * g * (1 - w_u)
  grads = [gu, gv, 1 - w_t, -gu * logN, -gv * logD] + ([w_t * s] if theta.size == 6 else [])
  return _huber(r, delta).sum() / delta**2, np.array([(psi * d).sum() for d in grads])


def _theta(fit: dict) -> np.ndarray:
  """The raw (a, b, e, alpha, beta[, gamma]) of a fit_parametric result."""
  raw = [math.log(fit["A"]), math.log(fit["B"]), math.log(fit["E"]), fit["alpha"], fit["beta"]]
  return np.array(raw + ([fit["gamma"]] if "gamma" in fit else []))


def fit_parametric(N, D, L, gamma_free: bool = False, inits: np.ndarray | None = None,
                   delta: float = 1e-3, top_k: int = 16) -> dict:
  """Fits L = E + (A N^-alpha + B D^-beta)^gamma (gamma = 1 unless `gamma_free`) to runs
  of N params, D tokens and loss L by the Huber loss in log space. `inits` (K, 5 or 6) are
  raw (a, b, e, alpha, beta[, gamma]) starting points (default `init_grid`); the `top_k` with
  the lowest objective are refined. Returns {E, A, B, alpha, beta[, gamma], huber, runs}."""
  names = PARAMETRIC if gamma_free else CHINCHILLA
  form = "parametric (gamma) form" if gamma_free else "Chinchilla form"
  n = np.size(N)
  N, D, L = _check(f"fit of the {form} ({len(names)} parameters)", n, len(names) + 1,
                   N=N, D=D, L=L)
  inits = init_grid(gamma_free) if inits is None else np.atleast_2d(np.asarray(inits, float))
  if inits.ndim != 2 or inits.shape[1] != len(names):
    raise ValueError(f"inits.shape={inits.shape}, expected (K, {len(names)}) rows of "
                     f"(a, b, e, alpha, beta{', gamma' if gamma_free else ''})")
  if delta <= 0 or top_k < 1:
    raise ValueError(f"{delta=}, {top_k=}: expected delta > 0 and top_k >= 1")
  logN, logD, logL = np.log(N), np.log(D), np.log(L)
  if len(inits) > top_k:  # screen the grid in blocks (K x n arrays), refine the best
    scores = np.concatenate([_huber(_log_loss(blk, logN, logD)[0] - logL, delta).sum(-1)
                             for blk in np.array_split(inits, -(-len(inits) // 1024))])
    inits = inits[np.argsort(scores, kind="stable")[:top_k]]
  bounds = [(None, None)] * 3 + [(0.0, 10.0)] * 2 + [(1e-3, 10.0)] * gamma_free
  best = None
  with _one_blas_thread():
    for x0 in inits:
      res = optimize.minimize(_objective, x0, args=(logN, logD, logL, delta), jac=True,
                              method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": 2000, "gtol": 1e-9})
      if np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
        best = res
  a, b, e, alpha, beta = best.x[:5]
  out = {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": float(alpha),
         "beta": float(beta)}
  if gamma_free:
    out["gamma"] = float(best.x[5])
  out.update(huber=float(best.fun * delta**2), runs=int(n))
  return out


def predict_loss(fit: dict, N, D) -> np.ndarray:
  """E + (A N^-alpha + B D^-beta)^gamma of a parametric fit (gamma = 1 if it has none)."""
  N, D = np.asarray(N, float), np.asarray(D, float)
  inner = fit["A"] * N ** -fit["alpha"] + fit["B"] * D ** -fit["beta"]
  return fit["E"] + inner ** fit.get("gamma", 1.0)


def optimal_frontier(fit: dict, C, k: float = 6.0) -> dict[str, np.ndarray]:
  """The compute-optimal N, D = C / (k N) and loss of a parametric fit at each budget C
  (the loss along an IsoFLOP line is unimodal in ln N, so a bounded 1-D search finds it)."""
  C = np.atleast_1d(np.asarray(C, float))
  if not np.all(C > k):
    raise ValueError(f"C={C[C <= k][:3]} with k={k}: expected budgets C > k (N, D >= 1)")
  logN = np.array([optimize.minimize_scalar(
      lambda x, c=c: float(predict_loss(fit, math.exp(x), c / (k * math.exp(x)))),
      bounds=(0.0, math.log(c / k)), method="bounded", options={"xatol": 1e-6}).x for c in C])
  N = np.exp(logN)
  return {"C": C, "N": N, "D": C / (k * N), "L": predict_loss(fit, N, C / (k * N))}


def group_budgets(C, rtol: float = 0.2) -> np.ndarray:
  """Each run's compute budget: runs sorted by flops join a group while their flops are
  within (1 + rtol) of the group's smallest; a group's budget is its flops' geometric mean."""
  C = np.asarray(C, float)
  order, budget = np.argsort(C, kind="stable"), np.empty_like(C)
  groups, start = [], None
  for i in order:
    if start is None or C[i] > C[start] * (1 + rtol):
      groups.append([])
      start = i
    groups[-1].append(i)
  for g in groups:
    budget[g] = np.exp(np.log(C[g]).mean())
  return budget


def fit_isoflop(N, D, C, L, budget=None, rtol: float = 0.2) -> dict:
  """IsoFLOP analysis: per budget (explicit `budget` per run, else `group_budgets(C, rtol)`)
  a parabola of L against ln N whose vertex is N*, D* from ln D ~ ln N at ln N*, then
  N* = a C^b and D* = c C^d by least squares in log-log space. Budgets with fewer than 3
  distinct N or a parabola opening downwards are listed in "skipped"."""
  N, D, C, L = _check("IsoFLOP fit", np.size(N), 3, N=N, D=D, C=C, L=L)
  budget = group_budgets(C, rtol) if budget is None else np.asarray(budget, float)
  if budget.shape != C.shape:
    raise ValueError(f"budget.shape={budget.shape}, expected one budget per run {C.shape}")
  budgets, skipped = [], []
  for c in np.unique(budget):
    m = budget == c
    x, runs = np.log(N[m]), int(m.sum())
    if len(np.unique(x)) < 3:
      skipped.append({"C": float(c), "runs": runs,
                      "reason": f"{len(np.unique(x))} distinct N, a parabola needs 3"})
      continue
    p = np.polyfit(x, L[m], 2)
    if p[0] <= 0:
      skipped.append({"C": float(c), "runs": runs, "reason": "parabola has no minimum"})
      continue
    x_opt = -p[1] / (2 * p[0])
    logD_opt = np.polyval(np.polyfit(x, np.log(D[m]), 1), x_opt)
    budgets.append({"C": float(c), "runs": runs, "N_opt": math.exp(x_opt),
                    "D_opt": math.exp(logD_opt), "L_opt": float(np.polyval(p, x_opt)),
                    "parabola": [float(v) for v in p],
                    "interior": bool(x.min() <= x_opt <= x.max())})
  if len(budgets) < 2:
    raise ValueError(f"IsoFLOP fit: {len(budgets)} usable budgets, it needs at least 2 "
                     f"(each with 3+ distinct N; skipped: {skipped})")
  logC = np.log([r["C"] for r in budgets])
  b, log_a = np.polyfit(logC, np.log([r["N_opt"] for r in budgets]), 1)
  d, log_c = np.polyfit(logC, np.log([r["D_opt"] for r in budgets]), 1)
  return {"a": math.exp(log_a), "b": float(b), "c": math.exp(log_c), "d": float(d),
          "budgets": budgets, "skipped": skipped}


def bootstrap(fit: Callable[..., dict], arrays: Sequence[np.ndarray], n: int = 100,
              seed: int = 0, keys: Sequence[str] | None = None, groups=None) -> dict:
  """Uncertainty of `fit(*arrays)` by refitting on `n` resamples of the runs (with
  replacement; within each group of `groups` when given, so every group keeps its size).
  A resample whose fit raises ValueError counts as failed. Returns {"samples", "failed",
  "seed", key: {"std", "p05", "p95"}} for `keys` (default: the fit's float entries)."""
  arrays = [np.asarray(a) for a in arrays]
  size = len(arrays[0])
  if n < 2 or any(len(a) != size for a in arrays):
    raise ValueError(f"n={n}, lengths {[len(a) for a in arrays]}: expected n >= 2 and "
                     "arrays of one length")
  groups = np.zeros(size) if groups is None else np.asarray(groups)
  members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
  rng = np.random.default_rng(seed)
  draws, failed = [], 0
  for _ in range(n):
    idx = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members])
    try:
      draws.append(fit(*(a[idx] for a in arrays)))
    except ValueError:
      failed += 1
  if len(draws) < 2:
    raise ValueError(f"bootstrap: {failed} of {n} resamples failed to fit; too few left")
  keys = keys or [k for k, v in draws[0].items() if isinstance(v, float)]
  out = {"samples": len(draws), "failed": failed, "seed": seed}
  for k in keys:
    v = np.array([d[k] for d in draws])
    out[k] = {"std": float(v.std(ddof=1)), "p05": float(np.percentile(v, 5)),
              "p95": float(np.percentile(v, 95))}
  return out


def budget_labels(rows: Sequence[dict], rtol: float = 0.2) -> np.ndarray:
  """Each run's compute budget: its "budget" field when every row has one, else
  `group_budgets` of the flops."""
  have = sum("budget" in r for r in rows)
  if have == len(rows):
    return np.array([float(r["budget"]) for r in rows])
  if have:
    raise ValueError(f"{have} of {len(rows)} runs have a 'budget' field: give it on every "
                     "run or on none (then runs are grouped by flops)")
  return group_budgets(columns(rows)[2], rtol)


def fit_family(rows: Sequence[dict], n_boot: int = 100, seed: int = 0, rtol: float = 0.2,
               delta: float = 1e-3) -> dict:
  """The Chinchilla, parametric and IsoFLOP fits of one model family, each with a
  "bootstrap" of `n_boot` resamples (none when n_boot is 0): parametric refits start from
  the best optimum; IsoFLOP resamples stay within each budget."""
  N, D, C, L = columns(rows)
  budget = budget_labels(rows, rtol)
  out = {}
  for name, gamma_free, keys in (("chinchilla", False, CHINCHILLA),
                                 ("parametric", True, PARAMETRIC)):
    best = fit_parametric(N, D, L, gamma_free, delta=delta)
    if n_boot:
      refit = functools.partial(fit_parametric, gamma_free=gamma_free, inits=_theta(best),
                                delta=delta)
      best["bootstrap"] = bootstrap(refit, (N, D, L), n_boot, seed, keys)
    out[name] = best
  out["isoflop"] = fit_isoflop(N, D, C, L, budget)
  if n_boot:
    out["isoflop"]["bootstrap"] = bootstrap(fit_isoflop, (N, D, C, L, budget), n_boot, seed,
                                            ("a", "b", "c", "d"), groups=budget)
  return out

