"""--config.init_from: a train.py run starts from the tiny HF fixture's weights (its first loss
is the HF model's loss on the same batch); contradicting overrides and data that do not fit
the checkpoint's vocabulary fail before compute, naming the field."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs.formal import get_config as formal_config
from configs.default import get_config as default_config
from xlstm_jax import convert, sharding
from xlstm_jax.training.data import datasets, global_batch
from xlstm_jax.training.config import run_config
from xlstm_jax.training.init_from import parse_init_from, resolve_config
from xlstm_jax.training.pretrained import load_pretrained
from xlstm_jax.training.step import cross_entropy

ROOT = pathlib.Path(__file__).parents[1]
HF_DIR = ROOT / "tests" / "fixtures" / "hf_xlstm_tiny"
RUN = ["--config.num_steps=1", "--config.batch_size=8", "--config.eval_every=0",
       "--config.log_every=1", "--config.checkpoint_every=1",
       "--config.optimizer.warmup_steps=1"]


def train(workdir, *overrides, config="formal.py:task=parity"):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.run([sys.executable, str(ROOT / "train.py"),
                         f"--config={ROOT / 'configs' / config}", f"--workdir={workdir}",
                         *RUN, *overrides], capture_output=True, text=True, env=env,
                        timeout=600, cwd=ROOT)


def first_batch_loss(model, params, num_steps):
  """The loss of (model, params) on the first batch train.py reads (parity, batch 8; the
  length curriculum makes the batch depend on num_steps)."""
  config = formal_config("task=parity")
  config.batch_size, config.num_steps, config.eval_every = 8, num_steps, 0
  config.optimizer.warmup_steps = 0  # the schedule does not touch the data
  config.init_from = f"hf:{HF_DIR}"
  config = run_config(resolve_config(config))
  mesh = sharding.make_mesh(1, 1, 1, devices=jax.devices()[:1])  # train.py's one device
  train_ds, _ = datasets(config, None, mesh)
  batch = global_batch(next(iter(train_ds)), mesh)
  logits = model.apply({"params": params}, batch["inputs"])
  return float(cross_entropy(logits, batch["targets"], batch.get("mask")))


def first_loss(workdir):
  lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  return next(x for x in lines if x.get("step") == 1 and "loss" in x)["loss"]


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
  """A two-step parity run started from the HF fixture's weights (step 1's lr is 0: warmup)."""
  workdir = tmp_path_factory.mktemp("from_hf")
  result = train(workdir, f"--config.init_from=hf:{HF_DIR}", "--config.num_steps=2")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_train_from_hf_weights_first_loss(hf_run):
  saved = json.loads((hf_run / "config.json").read_text())
  hf = json.loads((HF_DIR / "config.json").read_text())
  assert saved["model"]["arch"] == "large"
  assert (saved["model"]["num_blocks"], saved["model"]["vocab_size"]) == (2, hf["vocab_size"])
  expected = first_batch_loss(*convert.load_hf(HF_DIR, chunk_size=saved["model"]["chunk_size"]),
                              num_steps=2)
  np.testing.assert_allclose(first_loss(hf_run), expected, rtol=1e-5)


def test_train_from_workdir_first_loss(hf_run, tmp_path):
  """A run started from another run's checkpoint: its first loss is that checkpoint's."""
  result = train(tmp_path, f"--config.init_from=workdir:{hf_run}")
  assert result.returncode == 0, result.stderr[-3000:]
  source = load_pretrained(hf_run)
  assert source.step == 2
  np.testing.assert_allclose(first_loss(tmp_path), first_batch_loss(source.model, jax.device_get(source.params), 1),
                             rtol=1e-5)
  hf_model, hf_params = convert.load_hf(HF_DIR, chunk_size=source.model.cfg.chunk_size)
  assert abs(first_loss(tmp_path) - first_batch_loss(hf_model, hf_params, 1)) > 1e-4  # trained


def test_contradicting_override_fails_before_compute(tmp_path):
  result = train(tmp_path, f"--config.init_from=hf:{HF_DIR}", "--config.model.num_blocks=3")
  assert result.returncode != 0
  assert "--config.model.num_blocks=3 contradicts" in result.stderr
  assert "num_blocks is 2" in result.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_config_resolution_and_errors(tmp_path):
  config = formal_config("task=parity")
  config.init_from = f"hf:{HF_DIR}"
  out = resolve_config(config, {"model.num_blocks": 2, "model.backend": "recurrent"})
  assert out.model.arch == "large" and out.model.gate_soft_cap == 15.0
  assert out.model.backend == config.model.backend  # execution fields stay the run's
  assert config.model.arch == "xlstm"               # the input config is unchanged
  with pytest.raises(ValueError, match=r"--config.model.embedding_dim=32 contradicts .* "
                                       r"embedding_dim is 64"):
    resolve_config(config, {"model.embedding_dim": 32})
  text = default_config()
  text.init_from = f"hf:{HF_DIR}"
  with pytest.raises(ValueError, match=r"tokenizer 'byte' has token ids up to 256, which do "
                                       r"not fit the vocab_size=97"):
    resolve_config(text)
  with pytest.raises(ValueError, match="init_from='tf:x' must be 'hf:DIR'"):
    parse_init_from("tf:x")
  with pytest.raises(ValueError, match="config.json does not exist"):
    parse_init_from(f"hf:{tmp_path}")
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(ValueError, match="has no checkpoints/"):
    parse_init_from(f"workdir:{tmp_path}")
  plain = default_config()
  assert resolve_config(plain) is plain  # no init_from: unchanged
  # a workdir source brings its tokenizer; an explicit other one is an error
  source = tmp_path / "src"
  (source / "checkpoints").mkdir(parents=True)
  (source / "config.json").write_text(json.dumps(json.loads(default_config().to_json())))
  text.init_from = f"workdir:{source}"
  assert resolve_config(text).data.tokenizer == "byte"
  with pytest.raises(ValueError, match=r"--config.data.tokenizer='tok.json' contradicts"):
    resolve_config(text, {"data.tokenizer": "tok.json"})
