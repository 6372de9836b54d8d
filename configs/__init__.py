"""Run configs (ml_collections files with get_config), packaged beside xlstm_jax so that the
entry points' default --config (configs/default.py) resolves from any directory."""
