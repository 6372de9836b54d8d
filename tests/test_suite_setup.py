"""The test session's own setup (tests/conftest.py): 8 simulated CPU devices, and the
persistent compilation cache that only the entry points started as subprocesses use."""

import os

import jax


def test_eight_simulated_devices():
  assert jax.device_count() == 8


def test_subprocesses_get_the_compilation_cache_and_this_process_does_not():
  cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
  assert os.path.isdir(cache)
  # this process compiles as before: the compile counters of test_mlstm_forms.py and
  # test_slstm.py would see no compilation where an earlier test left a cache entry
  assert jax.config.jax_compilation_cache_dir is None
