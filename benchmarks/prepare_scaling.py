"""Peak memory and throughput of `prepare`: the Beam pipeline vs the in-memory one.

  python benchmarks/prepare_scaling.py make --out=/tmp/c20 --mb=20      # synthetic JSONL
  python benchmarks/prepare_scaling.py run --corpus='/tmp/c20/*.jsonl' --tokenizer=tok.json \\
      --modes=memory,beam1,beam2

`make` writes `--files` JSONL files of documents cut from the default corpus (random
slices of 500-8000 characters, seeded), `--mb` MB of text in all. `run` prepares the
corpus once per mode in a fresh subprocess: `memory` = `prepare.prepare` (loads, tokenizes
and packs in one process), `beamN` = the Beam pipeline on the DirectRunner with N worker
processes. It samples the resident memory of the whole process tree (launcher plus
workers, summed) every 0.1 s and prints the peak, the wall time and MB/s of corpus
file, and the CPU seconds (MB per CPU-second does not depend on a shared machine's load).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

from xlstm_jax.data import default_corpus


def make(out: str, mb: float, files: int, seed: int = 0) -> None:
  text = "\n\n".join(default_corpus())
  rng = np.random.default_rng(seed)
  os.makedirs(out, exist_ok=True)
  per_file = mb * 1e6 / files
  for f in range(files):
    written = 0
    with open(os.path.join(out, f"part-{f:05d}.jsonl"), "w") as fh:
      while written < per_file:
        n = int(rng.integers(500, 8000))
        start = int(rng.integers(0, len(text) - n))
        doc = text[start:start + n]
        fh.write(json.dumps({"text": doc}) + "\n")
        written += len(doc.encode())
  print(f"wrote {files} files, {mb} MB of text, to {out}")


def _command(mode: str, corpus: str, out: str, tokenizer: str, seq_len: int,
             num_shards: int) -> list[str]:
  if mode == "memory":
    code = (f"from xlstm_jax.data import prepare; prepare.prepare({corpus!r}, {out!r}, "
            f"{seq_len}, {tokenizer!r}, num_shards={num_shards})")
    return [sys.executable, "-c", code]
  workers = int(mode.removeprefix("beam"))
  return [sys.executable, "-m", "xlstm_jax.data.prepare", f"--corpus={corpus}", f"--out={out}",
          f"--seq_len={seq_len}", f"--tokenizer={tokenizer}", f"--num_shards={num_shards}",
          f"--num_workers={workers}", "--progress_every=0"]


def measure(cmd: list[str]) -> tuple[float, float, float]:
  """(peak summed RSS of the process tree in MB, wall s, CPU s) of running `cmd`.

  CPU seconds (user + system of the command and every process it waited for) do not
  depend on how many other jobs share the machine; wall seconds do.
  """
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  began = time.perf_counter()
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  root = psutil.Process(proc.pid)
  peak = 0
  while proc.poll() is None:
    total = 0
    try:
      for p in [root, *root.children(recursive=True)]:
        try:
          total += p.memory_info().rss
        except psutil.NoSuchProcess:
          pass
    except psutil.NoSuchProcess:
      break
    peak = max(peak, total)
    time.sleep(0.1)
  seconds = time.perf_counter() - began
  if proc.returncode:
    raise RuntimeError(f"{cmd} failed:\n{proc.stderr.read()[-3000:]}")
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  return peak / 1e6, seconds, cpu


def run(args) -> None:
  paths = glob.glob(args.corpus)
  mb = sum(os.path.getsize(p) for p in paths) / 1e6  # file bytes (JSON), as the issue counts
  print(f"corpus {args.corpus}: {len(paths)} files, {mb:.1f} MB; tokenizer {args.tokenizer}, "
        f"seq_len {args.seq_len}, {args.num_shards} shards; {os.cpu_count()} CPUs")
  print(f"{'mode':>8} | {'peak RSS MB':>11} | {'wall s':>7} | {'MB/s':>6} | {'CPU s':>7} | "
        f"{'MB/CPU-s':>8}")
  for mode in args.modes.split(","):
    out = tempfile.mkdtemp(prefix="prep-")
    try:
      peak, seconds, cpu = measure(_command(mode, args.corpus, out, args.tokenizer, args.seq_len,
                                       args.num_shards))
    finally:
      shutil.rmtree(out)
    print(f"{mode:>8} | {peak:11.0f} | {seconds:7.1f} | {mb / seconds:6.2f} | {cpu:7.1f} | "
          f"{mb / cpu:8.2f}", flush=True)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  m = sub.add_parser("make", help="write a synthetic JSONL corpus")
  m.add_argument("--out", required=True)
  m.add_argument("--mb", type=float, required=True, help="MB of text")
  m.add_argument("--files", type=int, default=8)
  r = sub.add_parser("run", help="prepare it per mode; print peak memory and MB/s")
  r.add_argument("--corpus", required=True, help="glob of the JSONL files")
  r.add_argument("--tokenizer", default="byte")
  r.add_argument("--seq_len", type=int, default=2048)
  r.add_argument("--num_shards", type=int, default=8)
  r.add_argument("--modes", default="memory,beam1,beam2",
                 help="memory (in-memory prepare) and/or beamN (Beam, N workers)")
  args = p.parse_args(argv)
  if args.command == "make":
    make(args.out, args.mb, args.files)
  else:
    run(args)


if __name__ == "__main__":
  main()
