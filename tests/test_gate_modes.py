"""Gate ablations (the paper's Table 2 rows): a gate learned from the input, a bias only, or
its init frozen, in the mLSTM and sLSTM blocks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlstm_jax import presets
from xlstm_jax.nn import LanguageModel
from xlstm_jax.nn.lm import init_params


def _grads(cfg):
  model = LanguageModel(cfg)
  params = init_params(model, jax.random.key(0), batch=2, seq_len=8)
  tokens = jax.random.randint(jax.random.key(1), (2, 8), 0, cfg.vocab_size)
  loss = lambda p: model.apply({"params": p}, tokens).astype(jnp.float32).std()  # noqa: E731
  return params, jax.grad(loss)(params)


def _cfg(**kw):   # block 0 mLSTM, block 1 sLSTM
  return presets.model_config("xlstm_tiny", embedding_dim=32, num_blocks=2, slstm_at=(1,), **kw)


def test_learned_is_the_default_layout():
  params, grads = _grads(_cfg())
  m, s = params["stack"]["block_0"], params["stack"]["block_1"]
  assert {"igate", "fgate"} <= set(m) and "igate_bias" not in m
  assert {"igate", "fgate"} <= set(s)
  assert np.abs(grads["stack"]["block_0"]["igate"]["kernel"]).max() > 0


@pytest.mark.parametrize("mode", ["bias", "fixed"])
def test_input_free_gates(mode):
  params, grads = _grads(_cfg(igate_mode=mode, fgate_mode=mode))
  m, gm = params["stack"]["block_0"], grads["stack"]["block_0"]
  assert "igate" not in m and "fgate" not in m          # no input weights
  assert m["igate_bias"].shape == m["fgate_bias"].shape == (4,)
  bias_grad = max(np.abs(gm["igate_bias"]).max(), np.abs(gm["fgate_bias"]).max())
  assert (bias_grad > 0) == (mode == "bias")            # fixed: the init is frozen
  s, gs = params["stack"]["block_1"], grads["stack"]["block_1"]
  assert "igate" not in s and "fgate" not in s and {"zgate", "ogate"} <= set(s)
  r = np.asarray(gs["recurrent_kernel"])                 # [H, D, 4 gates, D]
  assert np.abs(r[:, :, :2]).max() == 0 and np.abs(r[:, :, 2:]).max() > 0
  b = np.asarray(gs["bias"])
  assert (np.abs(b[:2]).max() > 0) == (mode == "bias") and np.abs(b[2:]).max() > 0


def test_bias_gate_does_not_see_the_input():
  cfg = _cfg(igate_mode="bias", fgate_mode="learned")
  model = LanguageModel(cfg)
  params = init_params(model, jax.random.key(0), batch=1, seq_len=8)
  fgate = params["stack"]["block_0"]["fgate"]          # zero at init: give it weights
  fgate["kernel"] = jax.random.normal(jax.random.key(2), fgate["kernel"].shape)
  seen = []
  def spy(next_fun, args, kwargs, context):  # record the mLSTM block's gate outputs
    out = next_fun(*args, **kwargs)
    if context.method_name == "_gates":
      seen.append(dict(zip(("igate", "fgate"), out)))
    return out
  with nn.intercept_methods(spy):
    model.apply({"params": params}, jnp.arange(8)[None] % cfg.vocab_size)
  out = seen[0]   # block_0's
  assert np.ptp(np.asarray(out["igate"]), axis=1).max() == 0   # the same at every step
  assert np.ptp(np.asarray(out["fgate"]), axis=1).max() > 0


def test_bad_modes_are_errors():
  with pytest.raises(ValueError, match="igate_mode='off' is not one of"):
    _cfg(igate_mode="off")
  with pytest.raises(ValueError, match="fgate_mode='fixed' needs arch='xlstm'"):
    presets.model_config("large_tiny", fgate_mode="fixed")
