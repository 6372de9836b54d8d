"""Evaluates the latest checkpoint of a training run on its validation split.

  python eval.py --workdir=runs/default                   # loss and perplexity, all val batches
  python eval.py --workdir=runs/default --batches=8 --corpus='data/*.txt'
  python eval.py --workdir=runs/parity_slstm              # a synthetic task: accuracy per
                                                          # test length, scaled (0 chance, 1 perfect)
Prints the figures and writes them to WORKDIR/eval.json. The model, data and mesh come
from WORKDIR/config.json, written by train.py.
"""

import json
import pathlib

from absl import app, flags
from absl import logging as absl_logging

from xlstm_jax.training.checkpoint import quiet_orbax_logs
from xlstm_jax.training.evaluate import evaluate_workdir

flags.DEFINE_string("workdir", None, "the train.py run directory to evaluate", required=True)
flags.DEFINE_string("corpus", None, "evaluate on this corpus's validation split instead of "
                    "the run's data.corpus (same forms as data.corpus)")
flags.DEFINE_integer("batches", 0, "validation batches to use (0: all of them)")


def main(argv):
  del argv
  quiet_orbax_logs(absl_logging.get_absl_handler())
  f = flags.FLAGS
  result = evaluate_workdir(f.workdir, f.corpus, f.batches or None)
  if "task" in result:
    lo, hi = result["test_lengths"]
    print(f"step {result['step']}: {result['task']} scaled accuracy "
          f"{result['scaled_accuracy']:.3f} (accuracy {result['accuracy']:.3f}) over test "
          f"lengths {lo}..{hi}, {result['test_examples']} examples each")
  else:
    print(f"step {result['step']}: eval loss {result['eval_loss']:.4f}, perplexity "
          f"{result['eval_perplexity']:.3f} over {result['eval_batches']} batches of "
          f"{result['corpus']}")
  (pathlib.Path(f.workdir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
  app.run(main)
