"""configs/formal.py:setup=official against NX-AI's parity yaml files, the decay mask against
the official optimizer groups, and a pulse of every run of docs/results/issue21_runs.sh."""

import json

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_task_runs import _config
from xlstm_jax.nn import LanguageModel, ModelConfig
from xlstm_jax.training.loop import train as train_loop
from xlstm_jax.training.optimizer import OptimizerConfig, decay_mask, lr_schedule

# experiments/parity_xlstm{01,10,11}.yaml of github.com/NX-AI/xlstm, transcribed by hand.
YAML_TRAINING = {"batch_size": 256, "lr": 0.001, "seed": 42, "val_every_step": 200,
                 "lr_warmup_steps": 2000, "lr_decay_factor": 0.001, "weight_decay": 0.1,
                 "num_steps": 20000}
YAML_SLSTM_AT = {"slstm": (0, 1), "mlstm": (), "xlstm11": (1,)}
FIGURE4 = ("parity", "even_pairs", "cycle_navigation", "modular_arithmetic", "majority",
           "bucket_sort", "repetition")
FAMILIES = ("slstm", "xlstm11", "mlstm", "llama", "lstm")


def _official(task, model):
  return _config("formal", f"task={task},model={model},setup=official")


@pytest.mark.parametrize("task", FIGURE4)
@pytest.mark.parametrize("model", FAMILIES)
def test_official_config_builds_and_matches_the_yaml(task, model):
  c = _official(task, model)
  cfg = ModelConfig.from_dict(c.model)
  t = YAML_TRAINING
  assert (c.batch_size, c.optimizer.learning_rate, c.seed, c.eval_every, c.num_steps) == (
      t["batch_size"], t["lr"], t["seed"], t["val_every_step"], t["num_steps"])
  assert c.optimizer.warmup_steps == t["lr_warmup_steps"]
  assert c.optimizer.final_lr_ratio == t["lr_decay_factor"]
  assert c.optimizer.weight_decay == t["weight_decay"] and not c.optimizer.decay_embeddings
  assert (c.optimizer.b1, c.optimizer.b2, c.optimizer.grad_clip) == (0.9, 0.999, None)
  assert (cfg.num_blocks, cfg.embedding_dim, cfg.num_heads) == (2, 64, 1)
  if model != "llama":
    assert cfg.slstm_num_heads == 1
  if model in YAML_SLSTM_AT:
    assert tuple(cfg.slstm_at) == YAML_SLSTM_AT[model]
  d = c.data
  assert tuple(d.train_lengths) == (3, 40) and tuple(d.test_lengths) == (40, 256)
  assert d.curriculum == 0.0
  assert c.seq_len < 256   # padded to the longest training string, not to 256
  opt = OptimizerConfig(num_steps=c.num_steps, **c.optimizer)
  sched = lr_schedule(opt)
  assert float(sched(2000)) == pytest.approx(1e-3)
  assert float(sched(20000)) == pytest.approx(1e-6)


def test_official_parity_pads_to_48_and_bad_setup_errors():
  assert _official("parity", "slstm").seq_len == 48
  assert _config("formal", "task=parity") == _official("parity", "slstm")   # the default
  assert _config("formal", "setup=cpu").batch_size == 32
  with pytest.raises(ValueError, match="setup='paper' is not one of"):
    _config("formal", "setup=paper")


@pytest.mark.parametrize("model", ("slstm", "xlstm11", "llama"))
def test_decay_mask_is_the_official_optimizer_groups(model):
  """NX-AI's groups: every parameter of >= 2 dims decays except the embedding; 1-dim ones
  (biases, norm scales, the learnable skip) do not. The sLSTM bias is stored flat there
  (1 dim), here as [gates, heads, dh]: it must not decay either."""
  c = _official("parity", model)
  model_ = LanguageModel(ModelConfig.from_dict(c.model))
  params = flax.linen.meta.unbox(jax.eval_shape(
      lambda: model_.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))["params"])
  mask = decay_mask(params, decay_embeddings=c.optimizer.decay_embeddings)
  leaves = jax.tree_util.tree_leaves_with_path(params)
  assert len(leaves) > 5
  for (path, leaf), decays in zip(leaves, jax.tree_util.tree_leaves(mask)):
    name = path[-1].key
    official = leaf.ndim > 1 and name not in ("embedding", "bias")
    assert decays == official, (jax.tree_util.keystr(path), leaf.shape)


RUNS = [("formal", f"task=parity,model={m},setup=official") for m in FAMILIES] + [
    ("formal", "task=modular_arithmetic,model=slstm,setup=official"), ("mqar", "model=llama"),
    ("mqar", "model=llama,conv=0")]


def _tiny(name, arg):
  c = _config(name, arg)
  c.batch_size, c.num_steps, c.eval_every, c.eval_batches = 8, 6, 2, 1
  c.checkpoint_every, c.log_every, c.optimizer.warmup_steps = 2, 1, 2
  return c


def _metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").open()]


@pytest.mark.parametrize("name,arg", RUNS)
def test_pulse_of_each_issue21_run(tmp_path, name, arg):
  c = _tiny(name, arg)
  c.early_stop_accuracy, c.early_stop_evals = 0.0, 1  # the first validation stops the run
  last = train_loop(c, tmp_path)
  lines = _metrics(tmp_path)
  assert [r["step"] for r in lines if "early_stop" in r] == [2]
  assert 0 <= last["eval_accuracy"] <= 1 and max(r["step"] for r in lines) == 2
  assert all(np.isfinite(r["loss"]) for r in lines if "loss" in r)


def test_pause_resume_and_early_stop_count(tmp_path):
  c = _tiny("formal", "task=parity,model=slstm,setup=official")
  c.stop_at_step = 3   # pause mid-schedule (checkpoint at 3), then resume to the end
  train_loop(c, tmp_path)
  assert max(r["step"] for r in _metrics(tmp_path)) == 3
  assert (tmp_path / "checkpoints" / "3").exists()
  c.stop_at_step = 0
  c.early_stop_accuracy, c.early_stop_evals = 0.0, 2   # two validations: steps 4 and 6
  train_loop(c, tmp_path)
  lines = _metrics(tmp_path)
  assert [r["step"] for r in lines if "early_stop" in r] == [6]
  c.early_stop_accuracy = 1.5
  with pytest.raises(ValueError, match="early_stop_accuracy=1.5 in \\[0, 1\\]"):
    train_loop(c, tmp_path / "bad")
