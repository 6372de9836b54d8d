"""Which mLSTM form is faster on CPU per sequence length: chunkwise against parallel,
forward+backward of the cell, the two interleaved in one run (so that a busy machine
slows both alike). `backend="auto"` on CPU takes the parallel form up to
`ops.mlstm.CPU_PARALLEL_MAX_T` tokens: this script is what that threshold rests on.

  python benchmarks/mlstm_forms_cpu.py                    # the default shapes
  python benchmarks/mlstm_forms_cpu.py --shapes 8x4x64 --seq_lens 64,128,256,512

A shape is BATCHxHEADSxHEAD_DIM (Dk = Dv); the defaults are the formal-task and MQAR models
(batch 256 and 32, 1 head of 128) and the train_throughput model (batch 8, 4 heads of 64).
"""

from __future__ import annotations

import argparse

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from xlstm_jax import ops  # noqa: E402
from xlstm_jax.ops.mlstm import CPU_PARALLEL_MAX_T  # noqa: E402
from timing import best_ms  # noqa: E402

FORMS = ("chunkwise", "parallel")


def fwd_bwd(form: str, chunk_size: int):
  def loss(q, k, v, i, f):
    return ops.mlstm(q, k, v, i, f, backend=form, chunk_size=chunk_size).sum()
  return jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4)))


def parse_shape(text: str) -> tuple[int, int, int]:
  parts = text.split("x")
  if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
    raise argparse.ArgumentTypeError(f"shape {text!r} is not BATCHxHEADSxHEAD_DIM, e.g. 8x4x64")
  return tuple(int(p) for p in parts)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--shapes", default="256x1x128,32x1x128,8x4x64",
                      help="comma-separated BATCHxHEADSxHEAD_DIM")
  parser.add_argument("--seq_lens", default="48,64,128,256", help="comma-separated T")
  parser.add_argument("--chunk_size", type=int, default=32, help="chunkwise chunk (32)")
  parser.add_argument("--repeats", type=int, default=5, help="best of N timed rounds (5)")
  args = parser.parse_args(argv)
  shapes = [parse_shape(s) for s in args.shapes.split(",")]
  fns = {form: fwd_bwd(form, args.chunk_size) for form in FORMS}
  print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, float32, chunk "
        f"{args.chunk_size}, best of {args.repeats}; auto takes parallel up to T="
        f"{CPU_PARALLEL_MAX_T}")
  print("  B   H    D     T | chunkwise ms | parallel ms | chunkwise / parallel")
  for B, H, D in shapes:
    for T in (int(t) for t in args.seq_lens.split(",")):
      keys = jax.random.split(jax.random.key(T), 5)
      qkv = [jax.random.normal(key, (B, H, T, D)) for key in keys[:3]]
      gates = [jax.random.normal(key, (B, H, T)) for key in keys[3:]]
      ms = {form: float("inf") for form in FORMS}
      for _ in range(args.repeats):   # interleaved rounds: load changes hit both forms
        for form, fn in fns.items():
          ms[form] = min(ms[form], best_ms(fn, (*qkv, *gates), 1))
      print(f"{B:3d} {H:3d} {D:4d} {T:5d} | {ms['chunkwise']:12.1f} | {ms['parallel']:11.1f} "
            f"| {ms['chunkwise'] / ms['parallel']:6.2f}", flush=True)


if __name__ == "__main__":
  main()
