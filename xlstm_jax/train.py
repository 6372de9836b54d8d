"""Trains an xLSTM (or the Llama baseline) language model from an ml_collections config.

  python -m xlstm_jax.train --workdir=runs/default              # configs/default.py
  python -m xlstm_jax.train --config=configs/default.py:xlstm10_tiny --workdir=runs/x
      --config.num_steps=100
  python -m xlstm_jax.train --workdir=runs/y --config.model.igate=sigmoid
  python -m xlstm_jax.train --help          # the flags and every --config.* field
(`python train.py ...` in a checkout is the same.) Starting again with the same workdir
resumes from its latest checkpoint. Multi-process: add --coordinator_address=HOST:PORT
--num_processes=N --process_id=I on every process (or set JAX_COORDINATOR_ADDRESS /
JAX_NUM_PROCESSES / JAX_PROCESS_ID; Slurm is detected).
"""

if __name__ == "__main__":   # `python -m ...`: huge pages and XLA:CPU flags before jax loads
  from xlstm_jax.cpu_setup import prepare_process
  prepare_process()

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from xlstm_jax import cli  # noqa: E402
from xlstm_jax.training import distributed  # noqa: E402
from xlstm_jax.training.checkpoint import quiet_orbax_logs  # noqa: E402
from xlstm_jax.training.config import run_config  # noqa: E402
from xlstm_jax.training.init_from import resolve_config  # noqa: E402
from xlstm_jax.training.loop import train  # noqa: E402
from xlstm_jax.training.workdir_lock import WorkdirLocked  # noqa: E402

FLAGS = flags.FlagValues()   # its own: xlstm_jax.train and .eval share flag names
config_flags.DEFINE_config_file("config", None, "run config: file[:preset] (default: the "
                                "configs/default.py beside the package, from any directory)",
                                lock_config=True, flag_values=FLAGS)
flags.DEFINE_string("workdir", None, "run directory: checkpoints, metrics.jsonl, tensorboard",
                    required=True, flag_values=FLAGS)
flags.DEFINE_string("coordinator_address", None,
                    "multi-process: HOST:PORT of process 0's coordinator service",
                    flag_values=FLAGS)
flags.DEFINE_integer("num_processes", None, "multi-process: number of processes",
                     flag_values=FLAGS)
flags.DEFINE_integer("process_id", None, "multi-process: this process's index, 0..N-1",
                     flag_values=FLAGS)

def parse_flags(argv):
  """The flags of train: --help lists the config fields; bad flags are one-line errors."""
  return cli.parse_flags(argv, __doc__, FLAGS, with_config=True)


def main(argv):
  """Trains FLAGS.config in FLAGS.workdir; a refused config or a diverged run ends with one
  error line and exit code 1."""
  del argv
  quiet_orbax_logs(absl_logging.get_absl_handler())
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  overrides = config_flags.get_override_values(FLAGS["config"])  # init_from checks them
  try:
    cli.run_or_exit(lambda: train(run_config(resolve_config(FLAGS.config, overrides)),
                                  FLAGS.workdir))
  except WorkdirLocked as err:  # another run writes there: one line, not a traceback
    raise SystemExit(f"error: {err}") from None


def run():
  """The console entry: absl's app.run with this module's flag parser."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
