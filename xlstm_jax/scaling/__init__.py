"""Scaling laws: sweeps and fits (parameter and FLOP counting is xlstm_jax.counting).

  xlstm_jax.scaling.sweep             a sweep's runs (CLI: python -m xlstm_jax.scaling.sweep;
                                      runs them through xlstm_jax.experiments.runner)
  xlstm_jax.scaling.fit               L(N, D) and IsoFLOP fits with bootstrap (pure)
  xlstm_jax.scaling.fit_plots         the fits' PNGs (matplotlib)
  xlstm_jax.scaling.fit_report        the fit's summary and CLI (python -m
                                      xlstm_jax.scaling.fit_report)
  xlstm_jax.scaling.ablation_report   the ablation sweep's table and plots
The submodules are imported by name (the fits load scipy, the plots matplotlib).
"""
