"""`python -m xlstm_jax.generate --model=DIR --prompt=...`: generation from the command line.

The command is xlstm_jax/generation_cli.py (`--help` explains it). Run it with `python -m`;
do not import this module: importing `xlstm_jax.generate` as a module would replace the
function `xlstm_jax.generate` on the package.
"""

if __name__ == "__main__":   # `python -m ...`: huge pages and XLA:CPU flags before jax loads
  from xlstm_jax.cpu_setup import prepare_process
  prepare_process()

from xlstm_jax.generation_cli import main  # noqa: E402

if __name__ == "__main__":
  main()
