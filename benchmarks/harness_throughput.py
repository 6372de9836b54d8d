"""Throughput of the lm-evaluation-harness adapter (xlstm_jax/evaluation/harness.py): examples/s
for loglikelihood, loglikelihood_rolling and generate_until requests.

  python benchmarks/harness_throughput.py                       # a random xlstm_tiny, byte vocab
  python benchmarks/harness_throughput.py --preset=xlstm71_125m # another preset (random weights)
  python benchmarks/harness_throughput.py --pretrained=DIR      # a workdir or an HF directory
Requests are synthetic but shaped like the paper's tasks: loglikelihood = HellaSwag-like
(a ~300-character context and 4 continuations of ~80 characters; one example = 4 requests),
rolling = 2,000-character documents, generate_until = LAMBADA-like (~300-character context,
at most 16 new tokens, stop at "."). Each kind runs once to compile, then is timed.
"""

from __future__ import annotations

import argparse
import pathlib
import time

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import jax  # noqa: E402
import numpy as np  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402

from xlstm_jax import presets  # noqa: E402
from xlstm_jax.data.tokenizers import ByteTokenizer  # noqa: E402
from xlstm_jax.evaluation.harness import XLSTMHarnessModel  # noqa: E402
from xlstm_jax.nn import LanguageModel, init_params  # noqa: E402
from xlstm_jax.training.pretrained import Pretrained  # noqa: E402


def random_model(preset: str) -> Pretrained:
  """A random `preset` with the byte tokenizer (vocab 257, EOS 256)."""
  model = LanguageModel(presets.model_config(preset, vocab_size=257))
  return Pretrained(model, init_params(model, jax.random.key(0)), ByteTokenizer(), (256,),
                    None, "random", pathlib.Path(preset))


def text(rng, n: int) -> str:
  words = ["the", "model", "state", "memory", "gate", "a", "of", "runs", "long", "text", "and"]
  out = []
  while sum(len(w) + 1 for w in out) < n:
    out.append(words[rng.integers(len(words))])
  return " ".join(out)[:n]


def requests(kind: str, n: int, seed: int = 0) -> list[Instance]:
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    if kind == "loglikelihood":
      ctx = text(rng, 300)
      out += [Instance(kind, {}, (ctx, " " + text(rng, 80)), i) for _ in range(4)]
    elif kind == "loglikelihood_rolling":
      out.append(Instance(kind, {}, (text(rng, 2000),), i))
    else:
      out.append(Instance(kind, {}, (text(rng, 300), {"until": ["."], "max_gen_toks": 16}), i))
  return out


def measure(lm, kind: str, examples: int) -> float:
  """Examples/s of `kind` (after one untimed pass that compiles the same shapes)."""
  reqs = requests(kind, examples)
  getattr(lm, kind)(reqs)
  start = time.perf_counter()
  getattr(lm, kind)(reqs)
  return examples / (time.perf_counter() - start)


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--pretrained", help="a workdir or HF xLSTM directory (default: a random "
                 "--preset)")
  p.add_argument("--preset", default="xlstm_tiny", help="model preset when no --pretrained "
                 "(default xlstm_tiny)")
  p.add_argument("--examples", type=int, default=32, help="examples per request kind")
  p.add_argument("--batch_size", type=int, default=16, help="the adapter's batch size")
  args = p.parse_args(argv)
  lm = XLSTMHarnessModel(pretrained=args.pretrained or random_model(args.preset),
                         batch_size=args.batch_size)
  result = {kind: measure(lm, kind, args.examples) for kind in
            ("loglikelihood", "loglikelihood_rolling", "generate_until")}
  print(f"device {jax.devices()[0].device_kind}, jax {jax.__version__}, model "
        f"{args.pretrained or args.preset}, batch {args.batch_size}, {args.examples} examples")
  for kind, rate in result.items():
    print(f"  {kind:>22}: {rate:8.2f} examples/s")
  return result


if __name__ == "__main__":
  main()
