"""Training: optimizer (AdamW, warmup + cosine, clipping, accumulation) and the sharded,
jitted train step. The entry point, checkpoints and metrics come with the training issue."""

from xlstm_jax.training.optimizer import OptimizerConfig, decay_mask, lr_schedule, make_optimizer
from xlstm_jax.training.step import (TrainState, batch_sharding, cross_entropy, init_train_state,
                                     make_train_step)

__all__ = ["OptimizerConfig", "TrainState", "batch_sharding", "cross_entropy", "decay_mask",
           "init_train_state", "lr_schedule", "make_optimizer", "make_train_step"]
