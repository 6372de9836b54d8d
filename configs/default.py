"""The default run: a tiny xLSTM (mLSTM + sLSTM blocks) on the embedded corpus, CPU-sized.

  python train.py --config=configs/default.py --workdir=runs/default
  python train.py --config=configs/default.py:llama_tiny --workdir=runs/llama --config.num_steps=50
The optional argument names a model preset (xlstm_presets in xlstm_jax/presets.py).
"""

import ml_collections

from xlstm_jax import presets


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = presets.model_config_dict(preset or "xlstm_tiny")  # every ModelConfig field
  c.model.vocab_size = 257           # byte tokenizer: 256 bytes + EOS
  c.model.vocab_pad_multiple = 64    # embedding/logits padded to 320 rows so a tensor (or
                                     # fsdp) mesh axis divides them; padded logits are masked
  c.num_steps = 300                  # optimizer steps (the schedule spans exactly these)
  c.batch_size = 16                  # global batch (sequences) per micro-batch, split over
                                     # processes; x optimizer.grad_accum_steps per step
  c.seq_len = 128                    # tokens per sequence
  c.log_every = 10                   # steps between metrics lines
  c.eval_every = 100                 # steps between validation passes (0: never)
  c.eval_batches = 8                 # validation batches per pass
  c.checkpoint_every = 100           # steps between checkpoints
  c.keep_checkpoints = 3             # newest checkpoints kept
  c.seed = 0                         # init and data order
  c.init_from = ""                   # "hf:DIR" / "workdir:DIR": start from those weights (their
                                     # architecture and tokenizer; xlstm_jax/training/init_from.py)
  c.peak_tflops_per_device = 0.0     # for MFU; 0: the accelerator's datasheet peak (CPU: no MFU)
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1                   # pure data parallel (-1: the devices left over)
  c.mesh.fsdp = 1                    # data parallel with sharded parameters
  c.mesh.tensor = 1                  # tensor parallel
  c.data = ml_collections.ConfigDict()
  c.data.corpus = "default"          # "default" (Python's help texts), a text glob, *.jsonl,
                                     # or a directory from `python -m xlstm_jax.data.prepare`
  c.data.tokenizer = "byte"          # "byte" or a tokenizer.json (BPE; set model.vocab_size)
  c.data.val_fraction = 0.05         # documents held out for validation
  c.data.split_seed = 0              # seed of that split (fixed across `seed` sweeps)
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.learning_rate = 3e-3   # peak learning rate
  c.optimizer.warmup_steps = 30      # linear warmup steps
  c.optimizer.final_lr_ratio = 0.1   # cosine decays to this fraction of the peak
  c.optimizer.b1 = 0.9               # AdamW beta1
  c.optimizer.b2 = 0.95              # AdamW beta2
  c.optimizer.eps = 1e-8             # AdamW epsilon
  c.optimizer.weight_decay = 0.1     # on weight matrices only
  c.optimizer.decay_embeddings = False  # also decay the embedding
  c.optimizer.grad_clip = 1.0        # global-norm clip
  c.optimizer.grad_accum_steps = 1   # micro-batches per optimizer step
  return c
