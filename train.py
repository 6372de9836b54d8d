"""Trains an xLSTM (or the Llama baseline) language model from an ml_collections config.

  python train.py --config=configs/default.py --workdir=runs/default
  python train.py --config=configs/default.py:xlstm10_tiny --workdir=runs/x --config.num_steps=100
  python train.py --config=configs/default.py --workdir=runs/y --config.model.igate=sigmoid
Starting again with the same workdir resumes from its latest checkpoint. Multi-process:
add --coordinator_address=HOST:PORT --num_processes=N --process_id=I on every process (or
set JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID; Slurm is detected).
"""

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from xlstm_jax.training import distributed
from xlstm_jax.training.checkpoint import quiet_orbax_logs
from xlstm_jax.training.init_from import resolve_config
from xlstm_jax.training.loop import train
from xlstm_jax.training.workdir_lock import WorkdirLocked

config_flags.DEFINE_config_file("config", "configs/default.py", "run config (file[:preset])",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "run directory: checkpoints, metrics.jsonl, tensorboard",
                    required=True)
flags.DEFINE_string("coordinator_address", None,
                    "multi-process: HOST:PORT of process 0's coordinator service")
flags.DEFINE_integer("num_processes", None, "multi-process: number of processes")
flags.DEFINE_integer("process_id", None, "multi-process: this process's index, 0..N-1")


def parse_flags(argv):
  """absl's parser, with a clear message for an override of a field the config lacks."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as err:
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    raise SystemExit(f"error: an override names a config field that does not exist ({err}); "
                     f"overrides given: {overrides}. See the config file for the fields.") from err


def main(argv):
  del argv
  quiet_orbax_logs(absl_logging.get_absl_handler())
  distributed.initialize(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes,
                         flags.FLAGS.process_id)
  overrides = config_flags.get_override_values(flags.FLAGS["config"])  # init_from checks them
  try:
    train(resolve_config(flags.FLAGS.config, overrides), flags.FLAGS.workdir)
  except WorkdirLocked as err:  # another run writes there: one line, not a traceback
    raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
