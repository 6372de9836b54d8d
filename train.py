"""Trains a language model: `python train.py --workdir=runs/x [--config=...]`, the same as
`python -m xlstm_jax.train` (see it, or --help, for the flags and config fields)."""

from xlstm_jax.train import run

if __name__ == "__main__":
  run()
