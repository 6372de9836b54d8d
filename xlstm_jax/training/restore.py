"""A run's model and parameters from its workdir: restore_model (used by fine-tuning's
init_from, load_pretrained and the evaluation of a workdir)."""

from __future__ import annotations

import pathlib

from xlstm_jax import sharding
from xlstm_jax.nn import LanguageModel
from xlstm_jax.training.checkpoint import Checkpointer
from xlstm_jax.training.config import run_config
from xlstm_jax.training.optimizer import make_optimizer
from xlstm_jax.training.step import abstract_train_state


def restore_model(config, workdir, mesh=None):
  """(model, params, step) of a run: the LanguageModel of `config` (the run's config, e.g.
  from its config.json) and the parameters of the newest checkpoint in workdir that
  restores. `mesh` defaults to the config's. `config`: a RunConfig or its ConfigDict/dict."""
  workdir = pathlib.Path(workdir)
  config = run_config(config)
  model = LanguageModel(config.model)
  tx = make_optimizer(config.optimizer)
  if mesh is None:
    mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
  abstract, _ = abstract_train_state(model, tx, mesh, config.seq_len)
  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints, async_save=False,
                      read_only=True)  # eval verifies checksums but writes nothing
  try:
    restored = ckpt.restore_latest(abstract, move_corrupt=False)
  finally:
    ckpt.close()
  if restored is None:
    raise ValueError(f"no checkpoint in {workdir / 'checkpoints'} restores")
  step, state, _ = restored
  return model, state.params, int(step)
