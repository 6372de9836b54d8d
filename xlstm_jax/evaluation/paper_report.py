"""The reproduction report: tables, plots and checked findings from the runs of paper.py.

`write_report(runs_dir, out_dir, tables)` reads each finished run's eval.json and
config.json and writes OUT/paper_reproduction.md with PNG plots beside it. Runs that have
not finished are listed as missing; a finding whose runs are missing says so instead of
passing or failing.
"""

from __future__ import annotations

import datetime
import pathlib
import platform

import jax

from xlstm_jax.evaluation import plots
from xlstm_jax.evaluation.paper_runs import LABELS, Run, load, progress_of
from xlstm_jax.counting.params import count_params
from xlstm_jax.nn import ModelConfig

FINDINGS = {
    "formal": "Parity and modular arithmetic: models with sLSTM blocks (xLSTM[0:1], xLSTM[1:1]) "
              "reach scaled accuracy >= 0.9 on the test lengths 40..256; xLSTM[1:0] and the "
              "Transformer stay below 0.3.",
    "mqar": "MQAR: xLSTM[1:1] beats the classic LSTM of the same size clearly (here: by at "
            "least 0.2 scaled accuracy), and the Transformer (with Zoology's short conv "
            "before attention) solves it (scaled accuracy >= 0.9).",
    "mqar_grid": "MQAR over context lengths and key-value pairs (Figure 5): averaged over the "
                 "grid, the Transformer scores highest and xLSTM[1:1] highest of the recurrent "
                 "models (within 0.02 counts), at least 0.2 above the classic LSTM.",
    "revision": "Revision: exponential input gating solves the task (scaled accuracy >= 0.9) "
                "where the sigmoid-gated cell of the same architecture does not (< 0.5), "
                "checked for each matched pair.",
    "extrapolation": "Extrapolation: the xLSTM trained at context C keeps its perplexity within "
                     "10% of the 1x value out to 8C; the Transformer degrades sharply (here: "
                     "more than 50% worse at 8C).",
}


def _fmt(x: float | None) -> str:
  return "-" if x is None else f"{x:.3f}"


def _verdict(ok: bool | None) -> str:
  return {True: "**reproduced**", False: "**not reproduced**", None: "**not run yet**"}[ok]


def _every_row(rows: list[bool | None]) -> bool | None:
  """A finding checked row by row: not reproduced as soon as one finished row fails (the
  rows still to run cannot change that), reproduced when every row ran and holds."""
  if False in rows:
    return False
  return None if None in rows else True


LEGACY_MARK = "(*)"


def _sharing(wall_line: dict) -> str:
  """How many runs shared the machine during one attempt, in words: the most runs seen at
  once (`runs_at_once`), or for an older line, its runner's `jobs` marked LEGACY_MARK."""
  if "runs_at_once" in wall_line:
    n, counted = wall_line["runs_at_once"], "at once"
  else:
    n, counted = wall_line.get("jobs", 1), f"in its runner {LEGACY_MARK}"
  return f"{n} run{'s' if n > 1 else ''} {counted}"


def _settings(done: dict[Run, dict]) -> list[str]:
  rows = ["| run | parameters | steps trained | batch | seq_len | peak lr | seed | wall (min) "
          "| machine |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
  for run, r in done.items():
    c, wall = r["config"], r["wall"]
    n = count_params(ModelConfig.from_dict(c["model"]))
    minutes = f"{sum(w['seconds'] for w in wall) / 60:.0f}" if wall else "-"
    machine = "; ".join(dict.fromkeys(f"{w['machine']}, {_sharing(w)}" for w in wall)) or "-"
    rows.append(f"| {run.table}/{run.name} | {n:,} | {r['eval'].get('step', c['num_steps'])} | "
                f"{c['batch_size']} | {c['seq_len']} | {c['optimizer']['learning_rate']:g} | "
                f"{c['seed']} | {minutes} | {machine} |")
  if any("runs_at_once" not in w for r in done.values() for w in r["wall"]):
    rows += ["", f"{LEGACY_MARK} Recorded before attempts counted the runs sharing the machine: "
             "the runs of its own runner only; a second runner beside it is not counted "
             "(docs/results/issue21.md's session entries say which runs shared the machine)."]
  return rows


def _formal(runs: list[Run], done: dict, out: pathlib.Path) -> tuple[list[str], bool | None]:
  tasks = sorted({r.name.rsplit("_", 1)[0] for r in runs})
  families = list(dict.fromkeys(r.name.rsplit("_", 1)[1] for r in runs))
  score = {tuple(r.name.rsplit("_", 1)):
           done[r]["eval"]["scaled_accuracy"] for r in runs if r in done}
  header = ["| task | " + " | ".join(LABELS[f] for f in families) + " |",
            "|---|" + "---:|" * len(families)]
  shortest = {}   # (task, family) -> scaled accuracy at the shortest test length
  for r in runs:
    if r in done and done[r]["eval"].get("per_length"):
      per_length = done[r]["eval"]["per_length"]
      first = min(per_length, key=int)
      shortest[tuple(r.name.rsplit("_", 1))] = (
          int(first), per_length[first]["scaled_accuracy"])
  lines = ["Scaled accuracy over all test lengths:", ""] + header
  for task in tasks:
    lines.append(f"| {task} | " + " | ".join(_fmt(score.get((task, f))) for f in families)
                 + " |")
  if shortest:
    length = min(n for n, _ in shortest.values())
    lines += ["", f"Scaled accuracy at the shortest test length ({length}, the edge of the "
              "training lengths): a model that is high here and low above learned the task "
              "in distribution but does not extrapolate.", ""] + header
    for task in tasks:
      lines.append(f"| {task} | " + " | ".join(
          _fmt(shortest[(task, f)][1] if (task, f) in shortest else None) for f in families)
          + " |")
  for task in tasks:
    finished = [(f, done[r]) for r in runs for f in families
                if r.name == f"{task}_{f}" and r in done]
    if finished:
      plots.plot_length_accuracy({LABELS[f]: d["eval"] for f, d in finished},
                                 out / f"formal_{task}.png",
                                 f"{task}: scaled accuracy per test length (trained on 3..40)")
      lines += ["", f"![{task}](formal_{task}.png)"]
    lines += _formal_curves(task, finished, out)
  wanted = [(t, f) for t in ("parity", "modular_arithmetic")
            for f in ("slstm", "xlstm11", "mlstm", "llama")]
  solvers = ("slstm", "xlstm11")   # expected >= 0.9; the others < 0.3
  holds = {k: score[k] >= 0.9 if k[1] in solvers else score[k] < 0.3
           for k in wanted if k in score}
  lines += ["", "The finding, model by model (it is reproduced when every row holds):", "",
            "| task | model | expected | scaled accuracy | holds |", "|---|---|---|---:|---|"]
  for t, f in wanted:
    held = {True: "yes", False: "**no**", None: "not run yet"}[holds.get((t, f))]
    lines.append(f"| {t} | {LABELS[f]} | {'>= 0.9' if f in solvers else '< 0.3'}"
                 f" | {_fmt(score.get((t, f)))} | {held} |")
  lines += ["", "The bars (>= 0.9 for the models with sLSTM blocks, < 0.3 for the others, the "
            "same for both tasks) are this report's reading of the paper's claim, fixed before "
            "the runs; they were not checked against the per-task values of the paper's "
            "Figure 4 (a heat map), so a failed row says a run missed this report's bar."]
  ok = _every_row([holds.get(k) for k in wanted])
  missing = len(wanted) - len(holds)
  if ok is False and missing:
    lines += ["", f"{missing} of {len(wanted)} rows are not run yet; a failed row already "
              "decides the verdict, whatever they give."]
  return lines, ok


def _formal_curves(task: str, finished: list[tuple[str, dict]],
                   out: pathlib.Path) -> list[str]:
  """The validation accuracy during training of a task's finished runs (family, `load`
  result), plotted where their archive kept metrics.jsonl."""
  curves = {LABELS[f]: [(m["step"], m["eval_accuracy"]) for m in d["metrics"]
                        if "eval_accuracy" in m] for f, d in finished}
  if not any(curves.values()):
    return []
  lo, hi = finished[0][1]["config"]["data"]["val_lengths"]
  plots.plot_validation_curves(curves, out / f"formal_{task}_training.png",
                               f"{task}: validation accuracy (lengths {lo}..{hi}) in training")
  missing = [label for label, c in curves.items() if not c]
  return ["", f"Validation accuracy during training (lengths {lo}..{hi}, in distribution)"
          + (f"; no curve was kept for {', '.join(missing)} (finished before the archive "
             "kept training curves)" if missing else "") + ":", "",
          f"![{task} training](formal_{task}_training.png)"]


def _mqar(runs: list[Run], done: dict, out: pathlib.Path) -> tuple[list[str], bool | None]:
  del out
  lines = ["| model | accuracy | scaled accuracy |", "|---|---:|---:|"]
  score = {}
  for r in runs:
    e = done.get(r, {}).get("eval")
    score[r.name] = e and e["scaled_accuracy"]
    lines.append(f"| {LABELS[r.name]} | {_fmt(e and e['accuracy'])} | "
                 f"{_fmt(e and e['scaled_accuracy'])} |")
  failed = [LABELS[name] for name, x in score.items() if x is not None and x < 0.5]
  if failed:
    lines += ["", f"Below 0.5 scaled accuracy after this run's steps: {', '.join(failed)}."]
  ok = None
  if all(score.get(name) is not None for name in ("xlstm11", "lstm", "llama")):
    ok = score["xlstm11"] >= score["lstm"] + 0.2 and score["llama"] >= 0.9
  return lines, ok


def _mqar_grid(runs: list[Run], done: dict,
               out: pathlib.Path) -> tuple[list[str], bool | None]:
  cells, grid = {}, {}   # family -> {(context, pairs): scaled accuracy}; the cells in order
  for r in runs:
    family, context, pairs = r.name.split("_")   # e.g. xlstm11_c64_p8
    cell = (int(context[1:]), int(pairs[1:]))
    grid[cell] = None
    cells.setdefault(family, {})
    if r in done:
      cells[family][cell] = done[r]["eval"]["scaled_accuracy"]
  lines = ["| context | pairs | " + " | ".join(LABELS[f] for f in cells) + " |",
           "|---:|---:|" + "---:|" * len(cells)]
  for context, pairs in grid:
    lines.append(f"| {context} | {pairs} | " + " | ".join(
        _fmt(cells[f].get((context, pairs))) for f in cells) + " |")
  complete = all(len(c) == len(grid) for c in cells.values())
  mean = {f: sum(c.values()) / len(grid) for f, c in cells.items()} if complete else {}
  lines.append("| mean | | " + " | ".join(_fmt(mean.get(f)) for f in cells) + " |")
  if any(cells.values()):
    plots.plot_mqar_grid({LABELS[f]: c for f, c in cells.items() if c}, out / "mqar_grid.png")
    lines += ["", "Scaled accuracy per cell (3000 steps of batch 32 each, one seed):", "",
              "![mqar grid](mqar_grid.png)"]
  ok = None
  if complete:
    recurrent = [f for f in mean if f != "llama"]
    ok = (mean["llama"] >= max(mean.values()) and mean["xlstm11"] + 0.02 >=
          max(mean[f] for f in recurrent) and mean["xlstm11"] >= mean["lstm"] + 0.2)
  return lines, ok


REVISION_PAIRS = (("mlstm_exp", "mlstm_sigmoid", "xLSTM[1:0], matrix memory"),
                  ("slstm_exp", "lstm_sigmoid", "sLSTM vs LSTM, scalar memory with memory mixing"),
                  ("slstm_exp_nomix", "lstm_sigmoid_nomix",
                   "sLSTM vs LSTM, scalar memory, no memory mixing"),
                  ("slstm_exp_nomix_levels64", "lstm_sigmoid_nomix_levels64",
                   "sLSTM vs LSTM, no memory mixing, 64 importance levels"))


def _revision(runs: list[Run], done: dict, out: pathlib.Path) -> tuple[list[str], bool | None]:
  lines = ["| architecture | input gate | memory mixing | importance levels | scaled accuracy |",
           "|---|---|---|---:|---:|"]
  score, curves = {}, {}
  for r in runs:
    model, gate, *rest = r.name.split("_")
    mixing = "no" if rest else ("-" if model == "mlstm" else "yes")
    levels = 64 if "levels64" in rest else 8
    e = done.get(r, {}).get("eval")
    score[r.name] = e and e["scaled_accuracy"]
    lines.append(f"| {LABELS[model]} | {gate} | {mixing} | {levels} | {_fmt(score[r.name])} |")
    if e:
      curves[f"{LABELS[model]} ({gate}{', no mixing' if rest else ''}"
             f"{', 64 levels' if levels == 64 else ''})"] = e
  if curves:
    plots.plot_length_accuracy(curves, out / "revision.png",
                               "revision: scaled accuracy per stream length")
    lines += ["", "![revision](revision.png)"]
  lines += ["", "Per matched pair (exponential >= 0.9 and sigmoid < 0.5):", ""]
  verdicts = []
  for exp, sig, what in REVISION_PAIRS:
    ok = None
    if score.get(exp) is not None and score.get(sig) is not None:
      ok = score[exp] >= 0.9 and score[sig] < 0.5
    verdicts.append(ok)
    lines.append(f"- {what}: exponential {_fmt(score.get(exp))}, sigmoid {_fmt(score.get(sig))}"
                 f": {_verdict(ok)}")
  return lines, _every_row(verdicts)


def _extrapolation(runs: list[Run], done: dict,
                   out: pathlib.Path) -> tuple[list[str], bool | None]:
  lines, ratio, curves = [], {}, {}
  for r in runs:
    if r not in done:
      continue
    ex = done[r]["eval"]["extrapolation"]
    factors = sorted(ex["factors"], key=int)
    if not lines:
      lines = ["| model | " + " | ".join(f"{f}x" for f in factors) + " |",
               "|---|" + "---:|" * len(factors)]
    lines.append(f"| {LABELS.get(r.name, r.name)} (C={ex['context']}) | " + " | ".join(
        f"{ex['factors'][f]['perplexity']:.3f} ({ex['factors'][f]['ratio_to_1x']:.2f}x)"
        for f in factors) + " |")
    ratio[r.name] = {int(f): ex["factors"][f]["ratio_to_1x"] for f in factors}
    curves[LABELS.get(r.name, r.name)] = ex
  if curves:
    plots.plot_extrapolation_models(curves, out / "extrapolation.png")
    lines += ["", "Perplexity over whole sequences of each length (in brackets: relative to "
              "1x). Per position bucket at the largest factor:", "",
              "![extrapolation](extrapolation.png)"]
  ok = None
  if "xlstm" in ratio and "llama" in ratio:
    ok = ratio["xlstm"].get(8, 1e9) <= 1.10 and ratio["llama"].get(8, 0) > 1.5
  return lines, ok


SECTIONS = {"formal": ("Formal languages", _formal), "mqar": ("MQAR", _mqar),
            "mqar_grid": ("MQAR grid (Figure 5)", _mqar_grid),
            "revision": ("Revision (keep the most important item)", _revision),
            "extrapolation": ("Length extrapolation", _extrapolation)}

DIFFERENCES = """\
## How this differs from the paper

- **Size and training.** The task models have 2 blocks of width 64; MQAR and revision train
  for 3000 steps of batch 32, the extrapolation LMs (the 4-block tiny presets) 1500 steps
  of batch 16 (the Settings table lists each run's parameters and steps). All run on a
  2-core CPU, one seed each. The paper trains larger models far longer. Where a finding
  fails here, a longer run is the first thing to try; the threshold is not moved.
- **Formal languages.** NX-AI's official parity setup (configs/formal.py, setup=official:
  1 head, 20,000 steps of batch 256, lr 1e-3 with 2000 warmup steps), trained on lengths
  3..40 and tested on 40..256 as in the paper, in float32 instead of bf16 autocast, and
  stopped early once 5 validations in a row are perfect in distribution. The classic LSTM
  (same setup) is reported beside the others but is not part of the finding.
- **MQAR.** One context length (64) with 8 key-value pairs, 64 keys and 64 values; the
  paper sweeps context lengths and pair counts with a much larger vocabulary. The
  Transformer has a causal conv of width 4 feeding q and k, as Zoology's attention
  baseline has one before attention; without it (the last row) a RoPE Transformer of this
  size stays at the ln 8 plateau for the whole budget (docs/results/issue21.md).
- **MQAR grid.** Context lengths 64, 128 and 256 with 1/16, 1/8 and 1/4 of the context in
  key-value pairs (4..32), every model at width 64 for 3000 steps of batch 32 at the
  default learning rate; the paper's Figure 5 varies the model width at each cell and
  tunes the learning rate, and goes to context 512 with up to 256 pairs.
- **Revision.** The paper motivates exponential gating with this task in words; the
  task here (16 items, streams of 2..32 pairs, 8 importance levels, and a 64-level
  variant) is our own. Two other ways around the gate exist at this size, which the pairs
  separate: the mLSTM's matrix memory can file each item under its importance (a key) and
  read the highest back, and memory mixing lets a sigmoid LSTM compare importances through
  its recurrence. Without mixing, a cell could still keep one unit per level and leave the
  choice to the feed-forward layer; 64 levels leave it fewer units per level (our
  reading, not tested further).
- **Extrapolation.** Byte-level models trained at context 64 on the embedded default
  corpus, evaluated at 1x..16x on its validation split (the paper: SlimPajama at 2048,
  evaluated to 16384).
"""


def _progress(runs_dir: pathlib.Path, run: Run, archive: pathlib.Path | None) -> str:
  """The report's note on an unfinished run, ' (at step S of N, validation accuracy A)', or
  '' if it has no checkpoint (`progress_of`)."""
  p = progress_of(runs_dir, run, archive)
  if p is None:
    return ""
  accuracy = "" if p["eval_accuracy"] is None else (
      f", validation accuracy {p['eval_accuracy']:.3f}")
  return f" (at step {p['step']:,} of {p['num_steps']:,}{accuracy})"


def write_report(runs_dir: pathlib.Path, out_dir: pathlib.Path, tables: dict[str, list[Run]],
                 archive: pathlib.Path | None = None) -> pathlib.Path:
  """Writes OUT/paper_reproduction.md (and its PNGs) from the finished runs of `tables`, in
  `runs_dir` or in `archive` (paper_runs.load)."""
  out_dir.mkdir(parents=True, exist_ok=True)
  done = {r: d for rs in tables.values() for r in rs
          if (d := load(runs_dir, r, archive)) is not None}
  missing = [f"`{r.table}/{r.name}`{_progress(runs_dir, r, archive)}"
             for rs in tables.values() for r in rs if r not in done]
  lines = ["# Reproducing the xLSTM paper's qualitative findings", "",
           f"Written by `python -m xlstm_jax.evaluation.paper` on "
           f"{datetime.date.today().isoformat()} from the runs in `{runs_dir.name}/`"
           f"{f' and `{archive.name}/`' if archive is not None else ''} "
           f"(jax {jax.__version__}, {platform.machine()} CPU). Each section states a finding, "
           "the threshold it is checked against, and whether the runs reproduce it.", ""]
  summary = ["## Findings", "", "| finding | verdict |", "|---|---|"]
  body = []
  for key in [k for k in SECTIONS if k in tables]:   # the report's order, not the run order
    runs = tables[key]
    title, section = SECTIONS[key]
    table, ok = section(runs, done, out_dir)
    summary.append(f"| {FINDINGS[key]} | {_verdict(ok)} |")
    body += [f"## {title}", "", FINDINGS[key], "", f"Verdict: {_verdict(ok)}.", "", *table, ""]
  lines += summary + [""] + body + ["## Settings", "", *_settings(done), ""]
  if missing:
    lines += ["Runs not finished yet: " + ", ".join(missing) + ".", ""]
  lines.append(DIFFERENCES)
  path = out_dir / "paper_reproduction.md"
  path.write_text("\n".join(lines))
  return path
