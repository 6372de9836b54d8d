"""Length extrapolation, text samples and plots: windowed losses against the one-shot forward,
models with known perplexities, bucket bookkeeping, and eval.py end to end."""

import dataclasses
import functools
import json
import math
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_train_entry import ROOT, env, train
from xlstm_jax import presets
from xlstm_jax.data import ByteTokenizer, PackedArrays, pack
from xlstm_jax.evaluation import (document_stream, extrapolation_curve, max_factor_within,
                                  packed_stream, text_samples, token_losses)
from xlstm_jax.evaluation import plots
from xlstm_jax.nn import LanguageModel, init_params
from xlstm_jax.evaluation.workdir import evaluate_workdir

V = 61  # small vocabulary of the tiny real models


@functools.cache
def _tiny(arch):
  """A 2-block model and its parameters: xLSTM with an mLSTM and an sLSTM block, or llama."""
  extra = dict(slstm_at=(1,), chunk_size=8) if arch == "xlstm" else {}
  cfg = presets.model_config(f"{arch}_tiny", vocab_size=V, embedding_dim=32, num_blocks=2,
                             **extra)
  model = LanguageModel(cfg)
  return model, init_params(model, jax.random.key(0))


def _one_shot_losses(model, params, tokens):
  logits = model.apply({"params": params}, jnp.asarray(tokens[:, :-1]))
  logp = jax.nn.log_softmax(logits, axis=-1)
  return np.asarray(-jnp.take_along_axis(logp, jnp.asarray(tokens[:, 1:, None]), -1)[..., 0])


@dataclasses.dataclass(frozen=True)
class BigramThenUniform:
  """A stand-in model with known losses: logits log P[x_t] of a fixed bigram table at absolute
  positions < `horizon`, uniform logits after. Its state is the next position, so a model that
  restarts or loses the state between windows gives other losses."""

  vocab: int
  horizon: int

  def log_table(self):
    return jax.nn.log_softmax(2.0 * (jnp.arange(self.vocab**2) % 4.0).reshape(self.vocab, -1))

  def sample(self, n, seed):
    """n tokens of the bigram chain: the model predicts them better than uniform."""
    probs, rng = np.exp(np.asarray(self.log_table(), np.float64)), np.random.default_rng(seed)
    out = [0]
    for _ in range(n - 1):
      out.append(rng.choice(self.vocab, p=probs[out[-1]] / probs[out[-1]].sum()))
    return np.asarray(out)

  def init_state(self, batch, max_len=None):
    del batch, max_len
    return {"pos": jnp.zeros((), jnp.int32)}

  def apply(self, variables, tokens, state=None, return_state=False):
    del variables
    pos = self.init_state(0)["pos"] if state is None else state["pos"]
    near = (pos + jnp.arange(tokens.shape[1]) < self.horizon)[None, :, None]
    logits = jnp.where(near, self.log_table()[tokens], 0.0)
    return (logits, {"pos": pos + tokens.shape[1]}) if return_state else logits


@dataclasses.dataclass(frozen=True)
class Constant:
  """A stand-in model that always predicts `token`."""

  vocab: int
  token: int

  def init_state(self, batch, max_len=None):
    del batch, max_len
    return {}

  def apply(self, variables, tokens, state=None, return_state=False):
    del variables
    logits = jnp.broadcast_to(10.0 * jax.nn.one_hot(self.token, self.vocab),
                              (*tokens.shape, self.vocab))
    return (logits, state) if return_state else logits


@pytest.mark.parametrize("arch", ["xlstm", "llama"])
def test_windowed_losses_equal_the_one_shot_forward(arch):
  """State passing over 4 windows (3 rows in batches of 2: one padded) gives the losses of
  one forward pass over the whole row; llama's positions continue across the windows."""
  model, params = _tiny(arch)
  tokens = np.random.default_rng(0).integers(0, V, (3, 33))
  got = token_losses(model, params, tokens, window=8, batch_size=2)
  assert got.shape == (3, 32)
  np.testing.assert_allclose(got, _one_shot_losses(model, params, tokens), atol=2e-5)


def test_a_uniform_model_has_the_vocabulary_as_perplexity_at_every_factor():
  model, params = _tiny("xlstm")
  params = {**params, "lm_head": {"kernel": jnp.zeros_like(params["lm_head"]["kernel"])}}
  stream = np.random.default_rng(1).integers(0, V, 2 * 32 + 5)
  result = extrapolation_curve(model, params, stream, context=8, factors=(4, 2), batch_size=2)
  assert sorted(result["factors"]) == [1, 2, 4]  # 1 is always there: the baseline
  assert result["tokens"] == 64 and result["context"] == 8
  for f, r in result["factors"].items():
    assert r["perplexity"] == pytest.approx(V, rel=1e-5)
    assert r["bucket_perplexity"] == pytest.approx([V] * f, rel=1e-5)
    assert r["sequences"] == 8 // f and r["ratio_to_1x"] == pytest.approx(1.0, rel=1e-5)
  assert result["max_factor_within"] == {"overall": 4, "last_bucket": 4}
  json.dumps(result)  # JSON-ready


def test_known_bigram_losses_fill_the_first_bucket_and_uniform_the_rest():
  """Each sequence restarts at position 0: the first C positions score the bigram table,
  the rest V. Every factor scores the same targets, so ratios show the context effect."""
  C, F = 4, 4
  model = BigramThenUniform(vocab=5, horizon=C)
  stream = model.sample(3 * F * C + 3, seed=2)
  result = extrapolation_curve(model, {}, stream, context=C, factors=(1, 2, 4), batch_size=3,
                               max_sequences=2)
  table = np.asarray(model.log_table())
  rows = stream[: 2 * F * C + 1]
  nll = -table[rows[:-1], rows[1:]]  # the loss of each target if it were near the start
  for f in (1, 2, 4):
    first = nll.reshape(-1, f, C)[:, 0]  # positions [0, C) of each sequence of f*C tokens
    r = result["factors"][f]
    assert r["sequences"] == 2 * F // f
    assert r["bucket_perplexity"][0] == pytest.approx(math.exp(first.mean()), rel=1e-5)
    assert r["bucket_perplexity"][1:] == pytest.approx([5.0] * (f - 1), rel=1e-5)
    overall = (first.sum() + math.log(5) * first.size * (f - 1)) / nll.size
    assert r["perplexity"] == pytest.approx(math.exp(overall), rel=1e-5)
    assert r["ratio_to_1x"] == pytest.approx(math.exp(overall - nll.mean()), rel=1e-5)
  assert math.exp(nll.mean()) < 4.0  # much better than uniform (5): longer factors fall behind
  assert result["max_factor_within"] == {"overall": 1, "last_bucket": 1}
  as_json = json.loads(json.dumps(result))
  assert max_factor_within(as_json, tolerance=10.0) == 4
  ratio_2x = as_json["factors"]["2"]["ratio_to_1x"]
  assert max_factor_within(as_json, tolerance=ratio_2x - 1 + 1e-9) == 2


class Raises:
  """A model that must never be called: the argument checks come first."""

  def apply(self, *args, **kwargs):
    raise AssertionError("the model ran before the arguments were checked")


def test_too_short_text_and_bad_factors_are_errors():
  model = BigramThenUniform(vocab=5, horizon=4)
  with pytest.raises(ValueError, match=r"has 64 tokens, too few for one sequence of 16 x "
                     r"context 4 \(\+1\) = 65"):
    extrapolation_curve(model, {}, np.zeros(64, np.int32), context=4, factors=(1, 16))
  extrapolation_curve(model, {}, np.zeros(65, np.int32), context=4, factors=(1, 16))
  with pytest.raises(ValueError, match=r"factors \[3\] do not divide the largest factor 8"):
    extrapolation_curve(model, {}, np.zeros(999, np.int32), context=4, factors=(1, 3, 8))
  with pytest.raises(ValueError, match="must be positive ints"):
    extrapolation_curve(model, {}, np.zeros(999, np.int32), context=4, factors=(0, 2))
  with pytest.raises(ValueError, match="tolerance=-0.1 must be >= 0"):
    extrapolation_curve(Raises(), {}, np.zeros(999, np.int32), context=4, tolerance=-0.1)
  with pytest.raises(ValueError, match="window=0 must be a positive int"):
    token_losses(model, {}, np.zeros((1, 9), np.int32), window=0)


def test_streams_rebuild_what_pack_cuts():
  rng = np.random.default_rng(3)
  docs = [list(rng.integers(0, 9, n)) for n in (5, 17, 1, 30)]
  stream = document_stream(docs, eos_id=9)
  assert len(stream) == 57 and (stream == 9).sum() == 4 and stream[5] == 9
  rows = PackedArrays(pack(docs, seq_len=8, eos_id=9))
  np.testing.assert_array_equal(packed_stream(rows), stream[:7 * 8 + 1])
  np.testing.assert_array_equal(packed_stream(rows, max_tokens=17), stream[:17])


def test_text_samples_stop_at_eos():
  tok = ByteTokenizer()
  [a] = text_samples(Constant(257, ord("a")), {}, tok, ["hi "], max_new_tokens=4)
  assert a == {"prompt": "hi ", "completion": "aaaa"}
  [empty] = text_samples(Constant(257, tok.eos_id), {}, tok, [""], max_new_tokens=4)
  assert empty == {"prompt": "", "completion": ""}
  with pytest.raises(ValueError, match="not one string"):
    text_samples(Constant(257, 0), {}, tok, "hi")


def _png(path):
  data = path.read_bytes()
  return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path):
  result = extrapolation_curve(BigramThenUniform(5, 4), {}, np.arange(70) % 5, context=4,
                               factors=(1, 2, 4, 8, 16))
  result = json.loads(json.dumps(result))  # as read back from eval.json: string keys
  assert _png(plots.plot_extrapolation(result, tmp_path / "a" / "extrapolation.png"))
  assert _png(plots.plot_extrapolation_models({"x": result, "y": result}, tmp_path / "b.png"))
  with pytest.raises(ValueError, match="factor=32 is not in every result"):
    plots.plot_extrapolation_models({"x": result}, tmp_path / "c.png", factor=32)
  per_length = {str(L): {"accuracy": 0.5, "scaled_accuracy": 1 - L / 64} for L in range(3, 64)}
  evals = {"sLSTM": {"per_length": per_length, "scaled_accuracy": 0.5, "train_lengths": [3, 20]},
           "Llama": {"per_length": per_length, "scaled_accuracy": 0.5}}
  assert _png(plots.plot_length_accuracy(evals, tmp_path / "acc.png", title="parity"))
  with pytest.raises(ValueError, match="has no 'per_length'"):
    plots.plot_length_accuracy({"bad": {"eval_loss": 1.0}}, tmp_path / "d.png")
  grid = {"xLSTM[1:1]": {(64, 4): 1.0, (64, 16): 0.8, (128, 8): 0.9}, "LSTM": {(64, 4): 0.2}}
  assert _png(plots.plot_mqar_grid(grid, tmp_path / "grid.png"))
  with pytest.raises(ValueError, match="results has no cells"):
    plots.plot_mqar_grid({"LSTM": {}}, tmp_path / "e.png")
  curves = {"sLSTM": [(400, 1.0), (200, 0.5)], "LSTM": []}   # unsorted; empty left out
  assert _png(plots.plot_validation_curves(curves, tmp_path / "curves.png"))
  with pytest.raises(ValueError, match="curves has no points"):
    plots.plot_validation_curves({"LSTM": []}, tmp_path / "f.png")


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("text_run")
  train(workdir, "--config.num_steps=2", "--config.checkpoint_every=2", "--config.eval_every=0")
  return workdir


def test_eval_py_extrapolates_and_samples(text_run):
  """Factor 1 over 2 rows of 4 x 64 tokens scores the 8 rows of the first validation batch,
  so its perplexity is eval.py's perplexity of that batch."""
  cmd = [sys.executable, str(ROOT / "eval.py"), f"--workdir={text_run}", "--batches=1",
         "--extrapolate=1,4", "--extrapolate_sequences=2", "--samples=2", "--prompt=The ",
         "--max_new_tokens=8", "--temperature=0.5"]
  result = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  written = json.loads((text_run / "eval.json").read_text())
  ex = written["extrapolation"]
  assert ex["context"] == 64 and sorted(ex["factors"], key=int) == ["1", "4"]
  assert ex["factors"]["1"]["sequences"] == 8 and ex["factors"]["4"]["sequences"] == 2
  assert len(ex["factors"]["4"]["bucket_perplexity"]) == 4
  assert ex["factors"]["1"]["perplexity"] == pytest.approx(written["eval_perplexity"], rel=1e-5)
  assert [s["prompt"] for s in written["samples"]] == ["The ", "The "]
  assert all(isinstance(s["completion"], str) for s in written["samples"])
  assert _png(text_run / "extrapolation.png")
  assert written["plots"] == {"extrapolation": str(text_run / "extrapolation.png")}
  assert f"eval loss {written['eval_loss']:.4f}" in result.stdout
  assert "4x (256 tokens, 2 sequences)" in result.stdout and "prompt 'The '" in result.stdout
  assert "extrapolation windows" in result.stderr


def test_evaluate_workdir_rejects_bad_options_before_restoring(text_run, tmp_path):
  config = json.loads((text_run / "config.json").read_text())
  shutil.copy(text_run / "config.json", tmp_path / "config.json")  # no checkpoints here
  with pytest.raises(ValueError, match=r"factors \[3\] do not divide"):
    evaluate_workdir(tmp_path, extrapolate=[1, 3, 4])
  with pytest.raises(ValueError, match=f"no checkpoint in {tmp_path / 'checkpoints'} restores"):
    evaluate_workdir(tmp_path, max_batches=1)
  config["data"]["task"] = "parity"
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match="are for text runs"):
    evaluate_workdir(tmp_path, samples=2)


@pytest.mark.parametrize("flag, message", [
    ("--extrapolate=0,2", "--extrapolate=0,2 must be positive ints"),
    ("--extrapolate_sequences=-1", "--extrapolate_sequences=-1 must be >= 0")])
def test_eval_py_usage_errors_come_first(tmp_path, flag, message):
  """Bad extrapolation flags stop eval.py before it looks for the run (none exists here)."""
  result = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"--workdir={tmp_path}", flag],
                          capture_output=True, text=True, env=env(), timeout=600)
  assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
