"""sLSTM timing: the `lax.scan` form (`xlstm_jax.ops.slstm`), forward and forward+backward,
beside a fused sLSTM kernel when one is available in the same run.

Implementations (each row says which ran, or why one was skipped):
  scan      `ops.slstm(..., backend="recurrent")` (or the op's only form where it takes no
            backend): one small block-diagonal matmul per step in `lax.scan`.
  pallas    `ops.slstm(..., backend="pallas")`, when the op offers that backend.
  flashrnn  NX-AI's fused CUDA sLSTM (PyPI `flashrnn`, PyTorch), when importable with a
            CUDA device: the peer this codebase's kernel is measured against.
Shapes: the sLSTM block of the xLSTM[7:1] 1.3B model (embedding 2048, 4 heads of 512) at
context 2048, and batch 16, T 1024 with 1..16 heads of 64..256 (issue 19). Inputs are
the pre-activations x [B, T, 4, H, D], the recurrent matrix r [H, D, 4, D] and the bias;
fwd+bwd takes the gradient of sum(h) with respect to all three. bfloat16 by default.
TFLOP/s counts the recurrent matmul only (2 B T H D 4D per direction, x3 fwd+bwd).

  python benchmarks/slstm_gpu.py                    # all shapes (GPU)
  python benchmarks/slstm_gpu.py --shapes 1.3b      # the 1.3B block only
  python benchmarks/slstm_gpu.py --dry_run          # tiny shapes on the CPU, a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np

from timing import best_ms
from xlstm_jax import ops

# name -> (B, T, H, D)
SHAPES = {"1.3b": [(8, 2048, 4, 512)],
          "sweep": [(16, 1024, h, d) for h, d in ((1, 256), (4, 64), (4, 128), (4, 256),
                                                   (16, 64), (16, 128))],
          "tiny": [(2, 16, 2, 16)]}


def recurrent_flops(B, T, H, D, backward=False):
  """The per-step recurrent matmul h_{t-1} r: 2 B H D 4D per step; backward twice that."""
  fwd = 2 * B * T * H * D * 4 * D
  return fwd * (3 if backward else 1)


def _op_backends() -> list[str]:
  """The `backend` values ops.slstm accepts, [] where it takes no backend argument."""
  param = inspect.signature(ops.slstm).parameters.get("backend")
  if param is None:
    return []
  backends = getattr(ops, "SLSTM_BACKENDS", None)
  return list(backends) if backends else ["recurrent", "pallas"]


def jax_impls():
  """name -> fn(x, r, b) -> h for the forms available here, plus skip reasons."""
  backends, impls, skipped = _op_backends(), {}, {}
  if not backends:
    impls["scan"] = lambda x, r, b: ops.slstm(x, r, b)
    skipped["pallas"] = "ops.slstm takes no backend argument in this checkout"
  else:
    impls["scan"] = lambda x, r, b: ops.slstm(x, r, b, backend="recurrent")
    if "pallas" in backends:
      impls["pallas"] = lambda x, r, b: ops.slstm(x, r, b, backend="pallas")
  return impls, skipped


def flashrnn_impl():
  """flashrnn's fused CUDA sLSTM timed with torch CUDA events, or the reason it can't run."""
  try:
    import torch  # noqa: PLC0415
    from flashrnn import flashrnn  # noqa: PLC0415
  except Exception as e:  # noqa: BLE001 (any import failure is a reason to skip the peer)
    return None, f"import failed: {type(e).__name__}: {e}"
  if not torch.cuda.is_available():
    return None, "torch sees no CUDA device"

  def run(B, T, H, D, dtype, backward, repeats):
    tdt = {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    Wx = torch.randn(B, T, 4, H, D, device="cuda", dtype=tdt, requires_grad=backward)
    R = (torch.randn(4, H, D, D, device="cuda", dtype=tdt) / D ** 0.5).requires_grad_(backward)
    b = torch.zeros(4, H, D, device="cuda", dtype=tdt, requires_grad=backward)

    def step():
      h, _ = flashrnn(Wx, R, b, function="slstm", backend="cuda_fused", dtype=dtype)
      if backward:
        h.float().sum().backward()
    step()
    best = float("inf")
    for _ in range(repeats):
      start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
      start.record(); step(); end.record(); torch.cuda.synchronize()  # noqa: E702
      best = min(best, start.elapsed_time(end))
    return best
  return run, None


def measure(shapes, dtype, repeats):
  """Rows of dicts: shape, impl, fwd and fwd+bwd ms and TFLOP/s."""
  impls, skipped = jax_impls()
  peer, why = flashrnn_impl() if jax.default_backend() == "gpu" else (None, "needs a GPU")
  skipped["flashrnn"] = why
  rows = []
  for B, T, H, D in shapes:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((B, T, 4, H, D)), dtype)
    r = jnp.asarray(rng.standard_normal((H, D, 4, D)) / np.sqrt(D), dtype)
    b = jnp.zeros((4, H, D), dtype)
    for name, fn in impls.items():
      fwd = jax.jit(fn)
      grad = jax.jit(jax.grad(lambda *a, fn=fn: fn(*a).astype(jnp.float32).sum(),
                              argnums=(0, 1, 2)))
      rows.append(dict(shape=(B, T, H, D), impl=name, fwd_ms=best_ms(fwd, (x, r, b), repeats),
                       fwdbwd_ms=best_ms(grad, (x, r, b), repeats)))
    if peer is not None:
      rows.append(dict(shape=(B, T, H, D), impl="flashrnn",
                       fwd_ms=peer(B, T, H, D, jnp.dtype(dtype).name, False, repeats),
                       fwdbwd_ms=peer(B, T, H, D, jnp.dtype(dtype).name, True, repeats)))
  for row in rows:
    row["fwd_tflops"] = recurrent_flops(*row["shape"]) / row["fwd_ms"] / 1e9
    row["fwdbwd_tflops"] = recurrent_flops(*row["shape"], backward=True) / row["fwdbwd_ms"] / 1e9
  return rows, {k: v for k, v in skipped.items() if v}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--shapes", default="1.3b,sweep", help="comma-separated of: 1.3b, sweep, tiny")
  p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
  p.add_argument("--repeats", type=int, default=5, help="best of N timed runs (5)")
  p.add_argument("--dry_run", action="store_true",
                 help="tiny shapes, one repeat: a CPU smoke test of the script, not a figure")
  p.add_argument("--out", default=None, help="also write the rows as JSON to this file")
  args = p.parse_args(argv)
  if args.dry_run:
    args.shapes, args.repeats = "tiny", 1
  unknown = set(args.shapes.split(",")) - set(SHAPES)
  if unknown:
    p.error(f"--shapes: unknown {sorted(unknown)}; known: {sorted(SHAPES)}")
  shapes = [s for name in args.shapes.split(",") for s in SHAPES[name]]
  print(f"# {datetime.date.today()} · {jax.devices()[0].device_kind} · jax {jax.__version__}"
        f" · {args.dtype} · best of {args.repeats}"
        + (" · DRY RUN (not a measurement)" if args.dry_run else ""))
  rows, skipped = measure(shapes, jnp.dtype(args.dtype), args.repeats)
  for name, why in skipped.items():
    print(f"# {name} skipped: {why}")
  print(f"{'B':>3} {'T':>5} {'H':>3} {'D':>4} {'impl':<9} | {'fwd ms':>9} {'TFLOP/s':>7} | "
        f"{'fwd+bwd ms':>10} {'TFLOP/s':>7} | {'scan/this fwd+bwd':>17}")
  scan = {r["shape"]: r for r in rows if r["impl"] == "scan"}
  for r in rows:
    speedup = scan[r["shape"]]["fwdbwd_ms"] / r["fwdbwd_ms"]
    print(f"{r['shape'][0]:>3} {r['shape'][1]:>5} {r['shape'][2]:>3} {r['shape'][3]:>4} "
          f"{r['impl']:<9} | {r['fwd_ms']:>9.2f} {r['fwd_tflops']:>7.2f} | "
          f"{r['fwdbwd_ms']:>10.2f} {r['fwdbwd_tflops']:>7.2f} | {speedup:>16.2f}x")
  print("# targets (issue 19): pallas >= 10x scan fwd+bwd, and at least flashrnn's speed")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(dict(rows=rows, skipped=skipped, dtype=args.dtype, jax=jax.__version__,
                     device=jax.devices()[0].device_kind), f, indent=1)


if __name__ == "__main__":
  main()
