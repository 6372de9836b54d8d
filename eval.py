"""Evaluates a training run: `python eval.py --workdir=runs/x [...]`, the same as
`python -m xlstm_jax.eval` (see it, or --help, for the flags)."""

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: see xlstm_jax/cpu_setup.py

from xlstm_jax.eval import run  # noqa: E402

if __name__ == "__main__":
  run()
