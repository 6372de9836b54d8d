"""The tiny CPU scaling ladder: 5 sizes x 3 compute budgets, xLSTM[1:0] and Llama (IsoFLOP).

  python -m xlstm_jax.scaling.sweep configs/sweeps/ladder.py --root=runs/ladder
  python -m xlstm_jax.scaling.fit_report --results=runs/ladder/results.jsonl --out=runs/ladder/fit

Each budget C is spent by every size N: num_steps = C / (F x batch x seq_len), with F
the training FLOPs per token by the 6 N estimate (counting/flops.py train_flops_per_token),
so the runs of a budget form an IsoFLOP set (each result carries its "budget", which the fit
groups by; the "flops" column is the count from the jaxpr). The cosine schedule spans each
run's own steps (Chinchilla's lesson: a schedule longer than the run biases the loss).
Byte-level default corpus, batch 16 x 64 tokens.
"""

from xlstm_jax import presets
from xlstm_jax.counting import train_flops_per_token

SIZES = ((32, 2), (48, 2), (64, 2), (64, 4), (96, 4))   # (embedding_dim, num_blocks)
BUDGETS = (2e11, 6e11, 2e12)                              # training FLOPs (6 N estimate)
FAMILIES = {"xlstm": "xlstm10_tiny", "llama": "llama_tiny"}
BATCH, SEQ_LEN = 16, 64


def planned_steps(preset: str, embedding_dim: int, num_blocks: int, budget: float) -> int:
  cfg = presets.model_config(preset, vocab_size=257, embedding_dim=embedding_dim,
                             num_blocks=num_blocks)
  steps = int(round(budget / (train_flops_per_token(cfg, SEQ_LEN) * BATCH * SEQ_LEN)))
  if steps < 20:   # a floor would break the budget's IsoFLOP set: refuse instead
    raise ValueError(f"budget {budget:g} buys {steps} steps of {preset} at E={embedding_dim}, "
                     f"{num_blocks} blocks; at least 20 are needed (raise the budget)")
  return steps


def get_sweep():
  runs = []
  for family, preset in FAMILIES.items():
    for budget in BUDGETS:
      for E, L in SIZES:
        steps = planned_steps(preset, E, L, budget)
        runs.append({"config": f"configs/default.py:{preset}", "budget": budget,
                     "model.embedding_dim": E,
                     "model.num_blocks": L, "num_steps": steps, "batch_size": BATCH,
                     "seq_len": SEQ_LEN, "optimizer.warmup_steps": max(steps // 20, 1),
                     "eval_every": 0, "checkpoint_every": max(steps // 4, 1),
                     "log_every": max(steps // 20, 1)})
  return {"config": "configs/default.py", "runs": runs,
          "name_keys": ("model.embedding_dim", "model.num_blocks", "num_steps")}
