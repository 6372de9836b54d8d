"""Evaluates the latest checkpoint of a training run on its validation split.

  python -m xlstm_jax.eval --workdir=runs/default          # loss and perplexity, all val batches
  python -m xlstm_jax.eval --workdir=runs/default --batches=8 --corpus='data/*.txt'
  python -m xlstm_jax.eval --workdir=runs/default --extrapolate=1,2,4,8,16   # perplexity at
                                     # 1..16 x seq_len -> WORKDIR/extrapolation.png
  python -m xlstm_jax.eval --workdir=runs/default --samples=3 --prompt='The ' --temperature=0.7
  python -m xlstm_jax.eval --workdir=runs/parity_slstm --plot   # a synthetic task: accuracy
                                     # per test length, scaled (0 chance, 1 perfect)
                                     # -> length_accuracy.png
(`python eval.py ...` in a checkout is the same.) Prints the figures and writes them to
WORKDIR/eval.json. The model, data and mesh come from WORKDIR/config.json, written by
training. Without --batches every validation batch is scored, so the loss differs from the
in-training evaluation, which scores config.eval_batches of them.
"""

if __name__ == "__main__":   # `python -m ...`: huge pages and XLA:CPU flags before jax loads
  from xlstm_jax.cpu_setup import prepare_process
  prepare_process()

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

from xlstm_jax import cli  # noqa: E402

FLAGS = flags.FlagValues()   # its own: xlstm_jax.train and .eval share flag names
flags.DEFINE_string("workdir", None, "the training run directory to evaluate", required=True,
                    flag_values=FLAGS)
flags.DEFINE_string("corpus", None, "evaluate on this corpus's validation split instead of "
                    "the run's data.corpus (same forms as data.corpus)", flag_values=FLAGS)
flags.DEFINE_integer("batches", 0, "validation batches to use, >= 0 (0: all of them)",
                     flag_values=FLAGS)
flags.DEFINE_list("extrapolate", [], "text runs: perplexity on sequences of these multiples "
                  "of seq_len, per position bucket (e.g. 1,2,4,8,16); writes extrapolation.png",
                  flag_values=FLAGS)
flags.DEFINE_integer("extrapolate_sequences", 0, "sequences of the largest factor to score "
                     "(0: all the validation text holds)", flag_values=FLAGS)
flags.DEFINE_integer("samples", 0, "text runs: this many generated samples, cycling through "
                     "the prompts (with --temperature=0 a repeated prompt repeats its text)",
                     flag_values=FLAGS)
flags.DEFINE_multi_string("prompt", None, "a prompt for --samples (repeatable; default: a few "
                          "short ones)", flag_values=FLAGS)
flags.DEFINE_integer("max_new_tokens", 64, "tokens generated per sample, >= 1",
                     flag_values=FLAGS)
flags.DEFINE_float("temperature", 0.0, "sampling temperature, >= 0 (0: greedy, the most "
                   "likely token each step, so samples of one prompt are identical; e.g. 0.7 "
                   "for varied samples)", flag_values=FLAGS)
flags.DEFINE_bool("plot", False, "write the figures: length_accuracy.png for task runs "
                  "(extrapolation.png is written whenever --extrapolate is given)",
                  flag_values=FLAGS)

def parse_flags(argv):
  """The flags of eval: --help lists them; bad flags are one-line errors."""
  return cli.parse_flags(argv, __doc__, FLAGS)


def check_flags(f) -> tuple[list[int], str | None]:
  """Refuses out-of-range flags before any work (app.UsageError naming the flag and the
  range expected); returns the --extrapolate factors and a warning (None: none)."""
  values = f.extrapolate
  if not all(v.strip().isdigit() and int(v) > 0 for v in values):
    raise app.UsageError(f"--extrapolate={','.join(values)} must be positive ints, e.g. 1,2,4,8")
  for name, low, meaning in (("batches", 0, "0: all of them"),
                             ("extrapolate_sequences", 0, "0: as many as the text holds"),
                             ("samples", 0, "0: none"),
                             ("max_new_tokens", 1, "tokens per sample")):
    if getattr(f, name) < low:
      raise app.UsageError(f"--{name}={getattr(f, name)} must be >= {low} ({meaning})")
  if not f.temperature >= 0:
    raise app.UsageError(f"--temperature={f.temperature} must be >= 0 (0: greedy; e.g. 0.7 "
                         "for varied samples)")
  warning = None
  prompts = f.prompt or _default_prompts()
  if f.temperature == 0 and f.samples > len(set(prompts)):
    warning = (f"warning: --samples={f.samples} with --temperature=0 (greedy): samples of the "
               "same prompt are identical; give --temperature>0 (e.g. 0.7) for varied ones")
  return [int(v) for v in values], warning


def _default_prompts():
  from xlstm_jax.evaluation.samples import DEFAULT_PROMPTS  # noqa: PLC0415 (loads jax)
  return DEFAULT_PROMPTS


def main(argv):
  """Evaluates FLAGS.workdir, prints the report and writes WORKDIR/eval.json. Out-of-range
  flags end with one error line (exit 2) before any work; a workdir that cannot be
  evaluated with one error line (exit 1)."""
  del argv
  f = FLAGS
  try:
    factors, warning = check_flags(f)   # before the restore and the validation pass
  except app.UsageError as err:
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
  if warning:
    print(warning, flush=True)
  from xlstm_jax.evaluation.workdir import evaluate_workdir, report_lines  # noqa: PLC0415
  from xlstm_jax.training.checkpoint import quiet_orbax_logs  # noqa: PLC0415
  quiet_orbax_logs(absl_logging.get_absl_handler())
  result = cli.run_or_exit(
      evaluate_workdir, f.workdir, f.corpus, f.batches or None, extrapolate=factors or None,
      extrapolate_sequences=f.extrapolate_sequences or None, samples=f.samples,
      prompts=f.prompt, max_new_tokens=f.max_new_tokens, temperature=f.temperature,
      plot=f.plot or bool(factors))
  print("\n".join(report_lines(result)))
  (pathlib.Path(f.workdir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")


def run():
  """The console entry: absl's app.run with this module's flag parser."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
