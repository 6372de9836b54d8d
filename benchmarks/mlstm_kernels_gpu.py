"""GPU timing of the Pallas chunkwise mLSTM kernels against cuDNN flash attention and
NX-AI's Triton chunkwise kernel, at the xLSTM 7B model's shapes.

Shapes (defaults): embedding 4096, 8 heads, Dk=256, Dv=512, bf16, B*T = 65536 tokens,
T in {2048, 8192, 32768}. Measured in the same run, on the same device:
  pallas    this repo's kernels (`pallas_kernels.mlstm_chunkwise`, Triton lowering),
            one row per --configs entry (chunk:block_dk:block_dv:num_warps:num_stages)
  cudnn     `jax.nn.dot_product_attention(..., implementation="cudnn")`, causal, same
            B, T and heads; head dim --attn_head_dim (256, cuDNN's largest; the mLSTM's
            value dim is 512)
  xl_chunk  `mlstm_kernels`' Triton chunkwise kernel ("triton_xl_chunk"), if importable
            (it needs jax_triton); otherwise the reason it was skipped is printed
Forward and forward+backward (grads of sum(h) w.r.t. all inputs), best of --repeats.
TFLOP/s count the matmul FLOPs of the chunkwise algorithm as run (`chunkwise_flops`; the
peer's at its own chunk size) and of causal attention (backward = 2.5x forward).

`--tfla` times the shapes of the published TFLA benchmark instead (Beck et al. 2025,
mlstm_kernels): 65,536 tokens per call, bf16, 16 heads with Dqk=128 and Dv=256
(embedding 4096), T from 1K to 64K, beside attention with 32 heads of 128 (the same
embedding), and prints the published H100 fwd+bwd figures (TFLA exp-gate kernel, FA3).
With several --configs the best configuration per T is printed (a block-size sweep).

  python benchmarks/mlstm_kernels_gpu.py [--seq_lens 2048,8192,32768] [--configs ...]
  python benchmarks/mlstm_kernels_gpu.py --tfla --configs 64:64:64:4:2,128:64:64:8:2
  python benchmarks/mlstm_kernels_gpu.py --interpret --tiny   # CPU smoke test, no GPU
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from pallas_kernels.mlstm_chunkwise import BlockSizes, mlstm_chunkwise_pallas
from xlstm_jax.ops import gates
from timing import best_ms


def chunkwise_flops(B, H, T, Dk, Dv, L, backward=False):
  """Matmul FLOPs of the chunkwise kernels as run (T padded to chunks, full L x L
  blocks, no causal skipping). Per chunk: forward = state scan (2 L Dk Dv) + outputs
  (2 L^2 Dk + 2 L^2 Dv + 2 L Dk Dv); backward = reverse scan (2 L Dk Dv) + gradients
  (6 L^2 Dk + 4 L^2 Dv + 8 L Dk Dv)."""
  chunks = B * H * -(-T // L)
  fwd = 4 * L * Dk * Dv + 2 * L * L * (Dk + Dv)
  bwd = 10 * L * Dk * Dv + L * L * (6 * Dk + 4 * Dv)
  return chunks * (fwd + (bwd if backward else 0))


def attention_flops(B, H, T, d, backward=False):
  """Causal attention: QK^T and PV on half the T x T matrix; backward 2.5x forward."""
  fwd = 2 * 2 * B * H * T * T * d / 2
  return fwd * (3.5 if backward else 1.0)



# Published fwd+bwd ms on one H100 at the TFLA shapes (mlstm_kernels' TFLA paper, its
# benchmark figure): T -> (TFLA mLSTM exp-gate kernel, FlashAttention-3).
TFLA_PUBLISHED_MS = {8192: (15.2, 32.3), 65536: (17.5, 227.0)}
# 8K and 64K first: the published figures are there, and a time-boxed run may stop early.
TFLA_SHAPES = dict(seq_lens="8192,65536,1024,2048,4096,16384,32768", tokens=65536, heads=16,
                   dk=128, dv=256, attn_heads=32, attn_head_dim=128)


def _fwd_and_fwdbwd(fn, num_args):
  loss = lambda *a: fn(*a).astype(jnp.float32).sum()  # noqa: E731
  return jax.jit(fn), jax.jit(jax.grad(loss, argnums=tuple(range(num_args))))


def _pallas(blocks, interpret):
  def fn(q, k, v, i, f):
    B, H, _, Dk = q.shape
    log_i, log_f = gates.GateOptions().log_gates(i, f)
    state0 = (jnp.zeros((B, H, Dk, v.shape[-1])), jnp.zeros((B, H, Dk)), jnp.zeros((B, H)))
    return mlstm_chunkwise_pallas(q, k, v, log_i, log_f, state0, blocks=blocks,
                                  interpret=interpret)[0]
  return fn


def _xl_chunk(chunk):
  """NX-AI's Triton chunkwise kernel, or the reason it cannot run here."""
  if jax.default_backend() != "gpu":
    return None, "needs a GPU"
  try:
    from mlstm_kernels.jax.chunkwise.triton_xl_chunk import mlstm_chunkwise__xl_chunk
  except Exception as e:  # noqa: BLE001 (any import failure is a reason to skip the peer)
    return None, f"import failed: {type(e).__name__}: {e}"

  def fn(q, k, v, i, f):
    return mlstm_chunkwise__xl_chunk(q, k, v, i, f, chunk_size=chunk,
                                     autocast_kernel_dtype=q.dtype)
  return fn, None


def _cudnn():
  if jax.default_backend() != "gpu":
    return None, "needs a GPU"

  def fn(q, k, v):
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn")
  return fn, None


def _parse_configs(text):
  blocks = []
  for entry in text.split(","):
    chunk, bk, bv, warps, stages = (int(x) for x in entry.split(":"))
    blocks.append(BlockSizes("gpu", chunk=chunk, block_dk=bk, block_dv=bv, num_warps=warps,
                             num_stages=stages))
  return blocks


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seq_lens", default="2048,8192,32768", help="comma-separated T")
  parser.add_argument("--tokens", type=int, default=65536, help="B * T, fixed across T")
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--dk", type=int, default=256, help="query/key head dim")
  parser.add_argument("--dv", type=int, default=512, help="value head dim")
  parser.add_argument("--attn_head_dim", type=int, default=256, help="cuDNN attention's")
  parser.add_argument("--attn_heads", type=int, default=None,
                      help="cuDNN attention's heads (default: --heads)")
  parser.add_argument("--tfla", action="store_true",
                      help="the published TFLA benchmark's shapes (overrides the shape flags)")
  parser.add_argument("--dtype", default="bfloat16")
  parser.add_argument("--configs", default="64:64:64:4:2",
                      help="pallas BlockSizes to time, comma-separated "
                           "chunk:block_dk:block_dv:num_warps:num_stages")
  parser.add_argument("--peer_chunk", type=int, default=128, help="xl_chunk's chunk size")
  parser.add_argument("--repeats", type=int, default=5, help="best of N timed runs")
  parser.add_argument("--interpret", action="store_true",
                      help="run the kernels in interpret mode (what makes CPU possible)")
  parser.add_argument("--tiny", action="store_true",
                      help="smoke-test shapes: tokens=128, T in {64, 128}, H=2, Dk=64, Dv=128")
  args = parser.parse_args()
  if args.tfla:  # the TFLA shapes, except where a shape flag was given explicitly
    given = {a.split("=")[0].lstrip("-") for a in sys.argv[1:] if a.startswith("--")}
    vars(args).update({k: v for k, v in TFLA_SHAPES.items() if k not in given})
  if args.tiny:
    args.seq_lens, args.tokens, args.heads, args.dk, args.dv = "64,128", 128, 2, 64, 128
    args.attn_head_dim, args.attn_heads, args.repeats = 64, 2, 1
  if jax.default_backend() != "gpu" and not args.interpret:
    sys.exit(f"no GPU (jax backend {jax.default_backend()!r}): the figures need one. "
             f"For a smoke test of the script itself: --interpret --tiny")
  dtype = jnp.dtype(args.dtype)
  attn_heads = args.attn_heads or args.heads
  configs = _parse_configs(args.configs)
  attn, attn_why = _cudnn()
  peer, peer_why = _xl_chunk(args.peer_chunk)

  print(f"# {datetime.date.today()} · {jax.devices()[0].device_kind} · jax {jax.__version__}"
        f" · {dtype.name} · H={args.heads} Dk={args.dk} Dv={args.dv} · B*T={args.tokens}"
        f" · best of {args.repeats}" + (" · INTERPRET MODE (not a measurement)"
                                         if args.interpret else ""))
  for name, why in (("cudnn", attn_why), ("xl_chunk", peer_why)):
    if why:
      print(f"# {name} skipped: {why}")
  print(f"{'T':>6} {'B':>4} {'impl':<22} | {'fwd ms':>8} {'TFLOP/s':>7} | "
        f"{'fwd+bwd ms':>10} {'TFLOP/s':>7} | {'x cudnn':>11} {'x xl_chunk':>11}")
  for T in (int(t) for t in args.seq_lens.split(",")):
    B, H = args.tokens // T, args.heads
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), dtype)  # noqa: E731
    mlstm_in = (normal(B, H, T, args.dk), normal(B, H, T, args.dk), normal(B, H, T, args.dv),
                normal(B, H, T) - 3.0, normal(B, H, T) + 3.0)
    rows = []  # (name, fwd ms, fwd flops, fwdbwd ms, fwdbwd flops)

    def timed(name, fn, num_args, inputs, flops):
      """Appends fn's row; a failure (a config Triton cannot compile, a shape cuDNN
      refuses, out of memory) is printed and the other rows still run."""
      try:
        fwd, fwdbwd = _fwd_and_fwdbwd(fn, num_args)
        rows.append((name, best_ms(fwd, inputs, args.repeats), flops(),
                     best_ms(fwdbwd, inputs, args.repeats), flops(backward=True)))
      except Exception as e:  # noqa: BLE001 (reported per row; the suite needs the rest)
        print(f"{T:>6} {B:>4} {name:<22} | FAILED {type(e).__name__}: "
              f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}", flush=True)

    if attn is not None:
      attn_in = tuple(normal(B, T, attn_heads, args.attn_head_dim) for _ in range(3))
      timed("cudnn attention", attn, 3, attn_in,
            functools.partial(attention_flops, B, attn_heads, T, args.attn_head_dim))
      del attn_in
    if peer is not None:
      timed(f"xl_chunk L={args.peer_chunk}", peer, 5, mlstm_in,
            functools.partial(chunkwise_flops, B, H, T, args.dk, args.dv, args.peer_chunk))
    for blocks in configs:
      timed(f"pallas {blocks.chunk}:{blocks.block_dk}:{blocks.block_dv}:"
            f"{blocks.num_warps}:{blocks.num_stages}", _pallas(blocks, args.interpret or None),
            5, mlstm_in,
            functools.partial(chunkwise_flops, B, H, T, args.dk, args.dv, blocks.chunk))
    ref = {r[0].split()[0]: r for r in rows}
    for name, f_ms, f_fl, fb_ms, fb_fl in rows:
      ratios = [f"{f_ms / ref[p][1]:.2f}/{fb_ms / ref[p][3]:.2f}"
                if p in ref and p != name.split()[0] else "-" for p in ("cudnn", "xl_chunk")]
      print(f"{T:>6} {B:>4} {name:<22} | {f_ms:>8.2f} {f_fl / f_ms / 1e9:>7.1f} | "
            f"{fb_ms:>10.2f} {fb_fl / fb_ms / 1e9:>7.1f} | {ratios[0]:>11} {ratios[1]:>11}")
    ours = [r for r in rows if r[0].startswith("pallas")]
    if not ours:
      print(f"{T:>6} best pallas config (fwd+bwd): none ran", flush=True)
      continue
    best = min(ours, key=lambda r: r[3])
    line = f"{T:>6} best pallas config (fwd+bwd): {best[0].split()[1]} {best[3]:.2f} ms"
    if args.tfla and T in TFLA_PUBLISHED_MS:
      tfla, fa3 = TFLA_PUBLISHED_MS[T]
      line += (f"; published H100: TFLA {tfla} ms ({best[3] / tfla:.2f}x ours/theirs), "
               f"FA3 {fa3} ms")
    print(line, flush=True)
  print("# x cudnn, x xl_chunk: this row's time over that peer's, fwd/fwd+bwd "
        "(below 1: faster than the peer)")


if __name__ == "__main__":
  main()
