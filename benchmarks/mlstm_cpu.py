"""CPU timing of the chunkwise mLSTM, forward and forward+backward, against a peer.

The peer is the pure-JAX chunkwise mLSTM of NX-AI's `mlstm_kernels` (if installed:
`pip install mlstm_kernels einops`), autodiff through its forward, measured in
the same run on the same inputs. Prints a table with both times, the ratio, and this
code's cost growth per doubling of T (linear cost: ~2x).

  python benchmarks/mlstm_cpu.py [--seq_lens 1024,2048,4096,8192,16384] [--chunk_size 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from xlstm_jax import ops  # noqa: E402
from timing import best_ms  # noqa: E402


def _peer():
  """mlstm_kernels' jnp chunkwise forward. Its package __init__ imports the Triton kernels
  (jax_triton), so the self-contained native file is loaded on its own."""
  spec = importlib.util.find_spec("mlstm_kernels")
  if spec is None:
    return None
  path = pathlib.Path(spec.origin).parent / "jax" / "chunkwise" / "native" / "fw.py"
  module_spec = importlib.util.spec_from_file_location("mlstm_kernels_native_fw", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)

  def peer(q, k, v, i, f, chunk_size):
    return module.mlstm_chunkwise_fw(q, k, v, i, f, chunk_size=chunk_size)[0]

  return peer



def _fwd_and_fwdbwd(mlstm_fn):
  fwd = jax.jit(mlstm_fn)
  loss = lambda *a: mlstm_fn(*a).astype(jnp.float32).sum()  # noqa: E731
  fwdbwd = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4)))
  return fwd, fwdbwd


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seq_lens", default="1024,2048,4096,8192,16384",
                      help="comma-separated sequence lengths T")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--heads", type=int, default=4)
  parser.add_argument("--head_dim", type=int, default=64, help="Dk = Dv")
  parser.add_argument("--chunk_size", type=int, default=64, help="this code's chunk size")
  parser.add_argument("--peer_chunk_size", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=3, help="best of N timed runs")
  parser.add_argument("--peer_max_len", type=int, default=8192,
                      help="skip the peer above this T: its forward unrolls a Python loop "
                           "over chunks; at T=16384 compiling it with autodiff took over "
                           "24 GB and was OOM-killed on a 24 GB machine")
  args = parser.parse_args(argv)

  ours = lambda q, k, v, i, f: ops.mlstm(  # noqa: E731
      q, k, v, i, f, backend="chunkwise", chunk_size=args.chunk_size)
  ours_fwd, ours_fwdbwd = _fwd_and_fwdbwd(ours)
  peer_fn = _peer()
  if peer_fn is not None:
    peer = lambda q, k, v, i, f: peer_fn(  # noqa: E731
        q, k, v, i, f, chunk_size=args.peer_chunk_size)
    peer_fwd, peer_fwdbwd = _fwd_and_fwdbwd(peer)
  else:
    print("mlstm_kernels is not installed: timing this code only")

  print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, B={args.batch}, "
        f"H={args.heads}, Dk=Dv={args.head_dim}, float32, best of {args.repeats}")
  header = f"{'T':>6} | {'fwd ms':>9} {'peer':>9} {'ratio':>6} | {'fwd+bwd ms':>10} " \
           f"{'peer':>9} {'ratio':>6} | {'x per 2T':>8}"
  print(header)
  print("-" * len(header))
  previous = None
  for T in (int(t) for t in args.seq_lens.split(",")):
    rng = np.random.default_rng(T)
    B, H, D = args.batch, args.heads, args.head_dim
    q, k, v = (jnp.asarray(rng.normal(size=(B, H, T, D)), jnp.float32) for _ in range(3))
    i = jnp.asarray(rng.normal(size=(B, H, T)), jnp.float32)
    f = jnp.asarray(rng.normal(3.0, 1.0, size=(B, H, T)), jnp.float32)
    inputs = (q, k, v, i, f)
    t_fwd = best_ms(ours_fwd, inputs, args.repeats)
    t_fb = best_ms(ours_fwdbwd, inputs, args.repeats)
    growth = f"{t_fb / previous[1] * previous[0] / T * 2:8.2f}" if previous else f"{'':8}"
    previous = (T, t_fb)
    print(f"{T:>6} | {t_fwd:9.1f} ", end="", flush=True)
    if peer_fn is not None and T <= args.peer_max_len:
      p_fwd = best_ms(peer_fwd, inputs, args.repeats)
      p_fb = best_ms(peer_fwdbwd, inputs, args.repeats)
      print(f"{p_fwd:9.1f} {p_fwd / t_fwd:6.2f} | {t_fb:10.1f} {p_fb:9.1f} "
            f"{p_fb / t_fb:6.2f} | {growth}")
    else:
      print(f"{'-':>9} {'-':>6} | {t_fb:10.1f} {'-':>9} {'-':>6} | {growth}")


if __name__ == "__main__":
  main()
