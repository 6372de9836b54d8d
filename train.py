"""Trains a language model: `python train.py --workdir=runs/x [--config=...]`, the same as
`python -m xlstm_jax.train` (see it, or --help, for the flags and config fields)."""

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: see xlstm_jax/cpu_setup.py

from xlstm_jax.train import run  # noqa: E402

if __name__ == "__main__":
  run()
