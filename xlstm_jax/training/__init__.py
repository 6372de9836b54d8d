"""Training: the run behind train.py and its parts.

  loop.train(config, workdir)     the whole run: data, sharded state, resume, metrics, evals
  config                          RunConfig (+ Data/MeshConfig): the typed, frozen run config
  optimizer                       AdamW, warmup + cosine, clipping, accumulation, decay mask
  step                            TrainState, loss, sharded init, the jitted train step
  data                            the run's tokenizer, sources and per-host batches
  evaluate                        the in-loop validation loss and perplexity
  restore                         restore_model: a run's model and parameters from its workdir
  checkpoint                      orbax checkpoints of the state and the data position
  metrics                         tensorboardX + metrics.jsonl, console progress
  distributed                     jax.distributed start-up from flags, environment or Slurm
"""

from xlstm_jax.training.config import DataConfig, MeshConfig, RunConfig, run_config
from xlstm_jax.training.optimizer import OptimizerConfig, decay_mask, lr_schedule, make_optimizer
from xlstm_jax.training.step import (TrainState, abstract_train_state, batch_sharding,
                                     cross_entropy, init_train_state, make_train_step)

__all__ = ["DataConfig", "MeshConfig", "OptimizerConfig", "RunConfig", "TrainState",
           "abstract_train_state", "batch_sharding", "cross_entropy", "decay_mask",
           "init_train_state", "lr_schedule", "make_optimizer", "make_train_step", "run_config"]
