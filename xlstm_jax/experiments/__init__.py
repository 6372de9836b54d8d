"""Experiments: the one runner behind the sweeps (xlstm_jax.scaling.sweep) and the paper's
tables (xlstm_jax.evaluation.paper).

  xlstm_jax.experiments.runner   train_and_eval (python -m xlstm_jax.train, then
                                 python -m xlstm_jax.eval), run_jobs (local, --jobs at a
                                 time), slurm_array_script (one array task per run)
"""
