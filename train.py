"""Trains a language model: `python train.py --workdir=runs/x [--config=...]`, the same as
`python -m xlstm_jax.train` (see it, or --help, for the flags and config fields)."""

from xlstm_jax.hugepages import reexec_with_hugepages

if __name__ == "__main__":
  reexec_with_hugepages()   # before jax loads: see xlstm_jax/hugepages.py

from xlstm_jax.train import run  # noqa: E402

if __name__ == "__main__":
  run()
