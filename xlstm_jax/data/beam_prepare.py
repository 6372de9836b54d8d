"""`prepare` as an Apache Beam pipeline: count, plan, write shards in parallel, then meta.json.

  run(PrepareSpec(corpus="data/*.jsonl.zst", out="data/prep", seq_len=2048), num_workers=8)
  python -m xlstm_jax.data.prepare --corpus='data/*.jsonl.zst' --seq_len=2048 --out=data/prep

Stages (all on the runner's workers; the launcher only lists the files):
  1. count: each source file is read once, in parallel, to count its non-empty documents
     (this pass also finds any bad record before tokenizing starts);
  2. plan: the counts fix each shard's contiguous document range (`shards.plan_shards`);
  3. write: each shard streams its range: split, tokenize, pack, write to a temporary
     name, rename (`shards.write_shard`);
  4. meta: one step sums the shard counts and writes meta.json, last, atomically.
The launcher then prints the summary. meta.json is removed before a run and written
only after every shard is in place, so an interrupted run leaves a directory that
`is_prepared` rejects, never one that training would read half of.

The DirectRunner (the default) runs `num_workers` processes on this machine; any other
`--runner` and its options (e.g. Dataflow's --project/--region/--temp_location, Flink's
--flink_master) pass through unchanged. The output directory must be a filesystem every
worker can write (ArrayRecord writes local paths, as array_record's own Beam sink does).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from xlstm_jax.data import shards
from xlstm_jax.data.corpus import corpus_sources
from xlstm_jax.data.shards import FORMAT, META
from xlstm_jax.data.tokenizers import load_tokenizer

# A shard file or a leftover temporary one of a prepare: what a fresh run clears first.
_REMOTE_VALUE_ERROR = re.compile(r"^ValueError: (.*)$", re.MULTILINE)
_OUTPUT_FILE = re.compile(r"^\.?(train|val)-\d{5}-of-\d{5}\.array_record(\.[0-9a-f]+\.tmp)?$")


def check_out_dir(spec: shards.PrepareSpec) -> None:
  """Refuses a directory holding a different preparation; clears an earlier run of this one.

  The same spec again (e.g. after an interruption) is redone from scratch: meta.json goes
  first, so the directory never looks complete while shards are removed or rewritten.
  """
  out = pathlib.Path(spec.out)
  meta_path = out / META
  if meta_path.is_file():
    old = json.loads(meta_path.read_text())
    new = {"format": FORMAT, **dataclasses.asdict(spec)}
    diff = {k: (old.get(k), v) for k, v in new.items() if k != "out" and old.get(k) != v}
    if diff:
      shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
      raise ValueError(f"{out} already holds a different preparation ({shown}); choose "
                       f"another --out or delete it")
    meta_path.unlink()
  out.mkdir(parents=True, exist_ok=True)
  for path in out.iterdir():
    if _OUTPUT_FILE.match(path.name):
      path.unlink()


def write_meta(stats: list[dict], spec: shards.PrepareSpec, vocab_size: int,
               eos_id: int) -> dict:
  """Sums the shards' counts into meta.json (written to a temporary name, then renamed)."""
  stats = sorted(stats, key=lambda s: s["shard"])
  total = {k: sum(s[k] for s in stats) for k in stats[0] if k != "shard"}
  if total["examples_train"] == 0:
    raise ValueError(f"no shard of {spec.corpus!r} has the {spec.seq_len + 1} train tokens "
                     f"(with EOS) of one example: {total['tokens_train']} train tokens in "
                     f"{spec.num_shards} shard(s); use fewer shards or a shorter seq_len")
  meta = {"format": FORMAT, "corpus": spec.corpus, "seq_len": spec.seq_len,
          "tokenizer": spec.tokenizer, "vocab_size": vocab_size, "eos_id": eos_id,
          "val_fraction": spec.val_fraction, "seed": spec.seed,
          "num_train": total["examples_train"], "num_val": total["examples_val"],
          "num_shards": spec.num_shards, "text_key": spec.text_key, "bytes": total["bytes"]}
  for split in shards.SPLITS:
    meta[f"documents_{split}"] = total[f"documents_{split}"]
    meta[f"tokens_{split}"] = total[f"tokens_{split}"]
    # Shards too short for one example write no file; the list says which exist.
    meta[f"shards_{split}"] = [[shards.shard_name(split, s["shard"], spec.num_shards),
                                s[f"examples_{split}"]] for s in stats if s[f"examples_{split}"]]
  path = os.path.join(spec.out, META)
  with open(path + ".tmp", "w") as f:
    f.write(json.dumps(meta, indent=2) + "\n")
  os.replace(path + ".tmp", path)
  return meta


def pipeline_options(runner: str = "DirectRunner", num_workers: int | None = None,
                     extra: list[str] = ()) -> PipelineOptions:
  """Beam options: the DirectRunner with `num_workers` processes, or `runner` with `extra`."""
  args = [f"--runner={runner}", *extra]
  if runner == "DirectRunner":
    n = num_workers or os.cpu_count() or 1
    # Processes, not threads: tokenizing is Python code that holds the GIL.
    args += [f"--direct_num_workers={n}",
             f"--direct_running_mode={'multi_processing' if n > 1 else 'in_memory'}"]
    if not any(a.startswith("--default_sdk_harness_log_level") for a in extra):
      # Worker processes log every bundle at INFO; keep the terminal to our progress lines.
      args.append("--default_sdk_harness_log_level=WARNING")
  return PipelineOptions(args)


def run(spec: shards.PrepareSpec, options: PipelineOptions | None = None,
        progress_every: float = 10.0) -> dict:
  """Runs the pipeline; returns meta.json's contents."""
  tok = load_tokenizer(spec.tokenizer)  # fails fast, before any worker starts
  sources = corpus_sources(spec.corpus)
  check_out_dir(spec)
  order = {source: i for i, source in enumerate(sources)}
  try:
    _run_pipeline(spec, options or pipeline_options(), sources, order,
                  (tok.vocab_size, tok.eos_id), progress_every)
  except Exception as e:
    # Worker processes report a failure as a RuntimeError around the remote traceback;
    # surface the ValueError that names the file and line instead.
    found = None if isinstance(e, ValueError) else _REMOTE_VALUE_ERROR.findall(str(e))
    if found:
      raise ValueError(found[-1]) from e
    raise
  return json.loads((pathlib.Path(spec.out) / META).read_text())


def _run_pipeline(spec: shards.PrepareSpec, options: PipelineOptions, sources: list[str],
                  order: dict[str, int], vocab_eos: tuple[int, int],
                  progress_every: float) -> None:
  with beam.Pipeline(options=options) as p:
    counts = (p | "Sources" >> beam.Create(sources)
                | "SpreadSources" >> beam.Reshuffle()
                | "Count" >> beam.Map(shards.count_documents, spec.text_key)
                | "AllCounts" >> beam.combiners.ToList())
    stats = (counts
             | "Plan" >> beam.FlatMap(lambda c: shards.plan_shards(
                 sorted(c, key=lambda sc: order[sc[0]]), spec.num_shards, spec.corpus))
             | "SpreadShards" >> beam.Reshuffle()
             | "Write" >> beam.Map(shards.write_shard, spec, progress_every)
             | "AllStats" >> beam.combiners.ToList())
    _ = stats | "Meta" >> beam.Map(write_meta, spec, *vocab_eos)


def summary(meta: dict, seconds: float) -> str:
  """The end-of-run lines: tokens per split, shards, tokens per byte, wall time."""
  tokens = meta["tokens_train"] + meta["tokens_val"]
  lines = [f"prepared {meta['corpus']!r} in {seconds:.1f} s "
           f"({meta['bytes'] / 1e6 / max(seconds, 1e-9):.2f} MB/s of text)"]
  for split in shards.SPLITS:
    lines.append(f"  {split}: {meta[f'documents_{split}']} documents, "
                 f"{meta[f'tokens_{split}']} tokens, {meta[f'num_{split}']} examples of "
                 f"{meta['seq_len']} in {len(meta[f'shards_{split}'])} shard(s)")
  lines.append(f"  {tokens / max(meta['bytes'], 1):.3f} tokens per byte "
               f"({meta['bytes']} bytes of text, tokenizer {meta['tokenizer']!r})")
  return "\n".join(lines)


def prepare(spec: shards.PrepareSpec, options: PipelineOptions | None = None,
            progress_every: float = 10.0, verbose: bool = True) -> dict:
  """`run` with a timed summary printed at the end."""
  began = time.perf_counter()
  meta = run(spec, options, progress_every)
  if verbose:
    print(summary(meta, time.perf_counter() - began), flush=True)
  return meta
