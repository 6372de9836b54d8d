"""Evaluates the latest checkpoint of a training run on its validation split.

  python eval.py --workdir=runs/default                   # loss and perplexity, all val batches
  python eval.py --workdir=runs/default --batches=8 --corpus='data/*.txt'
  python eval.py --workdir=runs/default --extrapolate=1,2,4,8,16   # perplexity at 1..16 x
                                                          # seq_len -> WORKDIR/extrapolation.png
  python eval.py --workdir=runs/default --samples=3 --prompt='The ' --temperature=0.7
  python eval.py --workdir=runs/parity_slstm --plot       # a synthetic task: accuracy per
                                                          # test length, scaled (0 chance, 1
                                                          # perfect) -> length_accuracy.png
Prints the figures and writes them to WORKDIR/eval.json. The model, data and mesh come
from WORKDIR/config.json, written by train.py.
"""

import json
import pathlib

from absl import app, flags
from absl import logging as absl_logging

from xlstm_jax.training.checkpoint import quiet_orbax_logs
from xlstm_jax.training.evaluate import evaluate_workdir, report_lines

flags.DEFINE_string("workdir", None, "the train.py run directory to evaluate", required=True)
flags.DEFINE_string("corpus", None, "evaluate on this corpus's validation split instead of "
                    "the run's data.corpus (same forms as data.corpus)")
flags.DEFINE_integer("batches", 0, "validation batches to use (0: all of them)")
flags.DEFINE_list("extrapolate", [], "text runs: perplexity on sequences of these multiples "
                  "of seq_len, per position bucket (e.g. 1,2,4,8,16); writes extrapolation.png")
flags.DEFINE_integer("extrapolate_sequences", 0, "sequences of the largest factor to score "
                     "(0: all the validation text holds)")
flags.DEFINE_integer("samples", 0, "text runs: this many generated samples, cycling through "
                     "the prompts")
flags.DEFINE_multi_string("prompt", None, "a prompt for --samples (repeatable; default: a few "
                          "short ones)")
flags.DEFINE_integer("max_new_tokens", 64, "tokens generated per sample")
flags.DEFINE_float("temperature", 0.0, "sampling temperature (0: greedy)")
flags.DEFINE_bool("plot", False, "write the figures: length_accuracy.png for task runs "
                  "(extrapolation.png is written whenever --extrapolate is given)")


def _factors(values: list[str]) -> list[int]:
  if not all(v.strip().isdigit() and int(v) > 0 for v in values):
    raise app.UsageError(f"--extrapolate={','.join(values)} must be positive ints, e.g. 1,2,4,8")
  return [int(v) for v in values]


def main(argv):
  del argv
  quiet_orbax_logs(absl_logging.get_absl_handler())
  f = flags.FLAGS
  factors = _factors(f.extrapolate)
  if f.extrapolate_sequences < 0:   # before the restore and the validation pass
    raise app.UsageError(f"--extrapolate_sequences={f.extrapolate_sequences} must be >= 0 "
                         "(0: as many as the validation text holds)")
  result = evaluate_workdir(
      f.workdir, f.corpus, f.batches or None, extrapolate=factors or None,
      extrapolate_sequences=f.extrapolate_sequences or None, samples=f.samples,
      prompts=f.prompt, max_new_tokens=f.max_new_tokens, temperature=f.temperature,
      plot=f.plot or bool(factors))
  print("\n".join(report_lines(result)))
  (pathlib.Path(f.workdir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
  app.run(main)
