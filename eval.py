"""Evaluates a training run: `python eval.py --workdir=runs/x [...]`, the same as
`python -m xlstm_jax.eval` (see it, or --help, for the flags)."""

from xlstm_jax.hugepages import reexec_with_hugepages

if __name__ == "__main__":
  reexec_with_hugepages()   # before jax loads: see xlstm_jax/hugepages.py

from xlstm_jax.eval import run  # noqa: E402

if __name__ == "__main__":
  run()
