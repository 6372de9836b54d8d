"""Data loader vs train step: grain batches/s over prepared shards beside the step time.

The loader is the training loop's own: `make_dataset` over a prepared directory's
`PackedRecords` (ArrayRecord shards, random access, shuffled), read in the main process
and with grain's multiprocessing prefetch (`mp_prefetch`, `--workers` processes). Each
setting reads `--batches` global batches after `--warmup` (which starts the workers);
batches/s = batches / wall time, best of `--repeats`. The train step is timed as in
train_throughput.py (the jitted step with donated state on one fixed batch, after compile)
for `--model` at the same batch and context; the loader keeps up when its batches/s
exceeds 1 / step time.

  python benchmarks/data_throughput.py --prepared=data/prep --model=xlstm10_125m --batch=8
  python benchmarks/data_throughput.py            # default corpus, prepared in memory to a
                                                  # temporary directory, xlstm10_tiny, T=256
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import grain  # noqa: E402
import jax  # noqa: E402
from absl import flags  # noqa: E402
from train_throughput import jax_runner, random_tokens  # noqa: E402

from xlstm_jax import presets  # noqa: E402
from xlstm_jax.data import make_dataset, prepare  # noqa: E402


def loader_batches_per_s(source, batch: int, workers: int, batches: int, warmup: int,
                         repeats: int) -> float:
  """Best of `repeats` runs: global batches per second read by the training pipeline."""
  best = 0.0
  for r in range(repeats):
    ds = make_dataset(source, batch_size=batch, seed=r)
    if workers:
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                       per_worker_buffer_size=4))
    it = iter(ds)
    for _ in range(warmup):
      next(it)
    began = time.perf_counter()
    for _ in range(batches):
      b = next(it)
    best = max(best, batches / (time.perf_counter() - began))
    assert b["inputs"].shape == (batch, source.seq_len)
    del it  # stops the worker processes before the next setting
  return best


def step_seconds(model: str, batch: int, seq_len: int, vocab: int, steps: int) -> float:
  """Seconds per train step of `model` (after one compiling step)."""
  cfg = presets.model_config(model, vocab_size=max(vocab, 256))
  run = jax_runner(cfg, random_tokens(batch, seq_len, cfg.vocab_size))
  run(1)  # compile
  began = time.perf_counter()
  run(steps)
  return (time.perf_counter() - began) / steps


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--prepared", default=None,
                 help="a prepared directory (default: the default corpus at --seq_len, "
                      "prepared in memory into a temporary directory)")
  p.add_argument("--seq_len", type=int, default=256, help="context when preparing the default")
  p.add_argument("--batch", type=int, default=8, help="global batch (examples)")
  p.add_argument("--workers", default="0,2", help="grain prefetch processes to try (0: none)")
  p.add_argument("--batches", type=int, default=200, help="timed batches per run")
  p.add_argument("--warmup", type=int, default=10, help="batches before timing")
  p.add_argument("--repeats", type=int, default=3, help="runs per setting (best reported)")
  p.add_argument("--model", default="xlstm10_tiny",
                 help="preset whose train step is timed (xlstm10_125m on an accelerator)")
  p.add_argument("--steps", type=int, default=5, help="timed train steps")
  args = p.parse_args(argv)
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags (defaults here)

  with tempfile.TemporaryDirectory() as tmp:
    directory = args.prepared
    if directory is None:
      directory = os.path.join(tmp, "prep")
      prepare.prepare("default", directory, args.seq_len, num_shards=4)
    meta, splits = prepare.open_prepared(directory)
    source = splits["train"]
    T = meta["seq_len"]
    print(f"{directory}: {len(source)} train examples of {T} tokens in "
          f"{len(glob.glob(os.path.join(directory, 'train-*.array_record')))} shard(s); "
          f"batch {args.batch}; "
          f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {os.cpu_count()} CPUs")
    print(f"{'loader':>22} | {'batches/s':>9} | {'tokens/s':>10}")
    rates = {}
    for workers in (int(w) for w in args.workers.split(",")):
      rate = loader_batches_per_s(source, args.batch, workers, args.batches, args.warmup,
                                  args.repeats)
      rates[workers] = rate
      name = f"grain, {workers} prefetch procs" if workers else "grain, main process"
      print(f"{name:>22} | {rate:9.1f} | {rate * args.batch * T:10.0f}", flush=True)
  seconds = step_seconds(args.model, args.batch, T, meta["vocab_size"], args.steps)
  best = max(rates.values())
  print(f"train step {args.model} (batch {args.batch} x {T}): {seconds * 1e3:.1f} ms "
        f"= {1 / seconds:.2f} steps/s; the loader's best is {best * seconds:.1f}x that "
        f"({'never' if best * seconds > 1 else 'IS'} the limit)")


if __name__ == "__main__":
  main()
