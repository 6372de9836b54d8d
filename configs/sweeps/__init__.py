"""Sweep files (get_sweep) for python -m xlstm_jax.scaling.sweep."""
