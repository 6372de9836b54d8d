"""Evaluates a training run: `python eval.py --workdir=runs/x [...]`, the same as
`python -m xlstm_jax.eval` (see it, or --help, for the flags)."""

from xlstm_jax.eval import run

if __name__ == "__main__":
  run()
