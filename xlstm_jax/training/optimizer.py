"""AdamW with a decay mask, linear warmup + cosine decay, global-norm clipping, and
gradient accumulation, from one frozen `OptimizerConfig`.

The schedule is a function of `num_steps` alone, so a resumed run follows the same curve.
"""

from __future__ import annotations

import dataclasses

import jax
import optax


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  learning_rate: float = 1e-3        # peak learning rate
  warmup_steps: int = 100            # linear warmup from 0 to the peak
  num_steps: int = 1000              # total optimizer steps: the cosine ends here
  final_lr_ratio: float = 0.1        # the cosine decays to peak * final_lr_ratio
  b1: float = 0.9                    # AdamW beta1
  b2: float = 0.95                   # AdamW beta2
  eps: float = 1e-8                  # AdamW epsilon
  weight_decay: float = 0.1          # decoupled weight decay on matrices
  decay_embeddings: bool = False     # also decay the embedding matrix
  grad_clip: float | None = 1.0      # global-norm clip (None: off)
  grad_accum_steps: int = 1          # micro-batches accumulated per optimizer step

  def __post_init__(self):
    for name in ("num_steps", "grad_accum_steps"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
    if not 0 <= self.warmup_steps <= self.num_steps:
      raise ValueError(f"warmup_steps={self.warmup_steps} must be in [0, num_steps="
                       f"{self.num_steps}]: set --config.optimizer.warmup_steps to at most "
                       f"{self.num_steps} (or raise --config.num_steps)")
    if self.learning_rate <= 0 or not 0 <= self.final_lr_ratio <= 1:
      raise ValueError(f"learning_rate={self.learning_rate} must be > 0 and final_lr_ratio="
                       f"{self.final_lr_ratio} in [0, 1]")
    if self.grad_clip is not None and self.grad_clip <= 0:
      raise ValueError(f"grad_clip={self.grad_clip} must be None or > 0")


def lr_schedule(cfg: OptimizerConfig) -> optax.Schedule:
  """0 -> peak linearly over warmup_steps, then cosine to peak * final_lr_ratio at
  num_steps (constant after)."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
      # optax needs a cosine of at least one step, even when the warmup fills the run.
      decay_steps=max(cfg.num_steps, cfg.warmup_steps + 1),
      end_value=cfg.learning_rate * cfg.final_lr_ratio)


def decay_mask(params, decay_embeddings: bool = False):
  """True for weight matrices (`kernel`, `recurrent_kernel`, and the embedding if asked);
  False for norms' scales, biases and the learnable skip."""
  def decays(path, _):
    name = path[-1].key
    if name == "embedding":
      return decay_embeddings
    return name in ("kernel", "recurrent_kernel")
  return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
  adamw = optax.adamw(lr_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                      weight_decay=cfg.weight_decay,
                      mask=lambda p: decay_mask(p, cfg.decay_embeddings))
  tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw) if cfg.grad_clip else adamw
  if cfg.grad_accum_steps > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=cfg.grad_accum_steps)
  return tx
