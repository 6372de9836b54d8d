"""The chunk-state recurrence as a Pallas kernel, forward and reverse.

  (C, n)_c = G_c (C, n)_{c-1} + (A_c^T (values_c * value_scale_c), A_c^T n_scale_c),
  A_c = keys_c * key_scale_c
over the K chunks of a sequence, from (C0, n0); reversed, it runs from the last chunk down.
It returns the state *entering* every chunk ([BH, K, ...]) and the last one. The forward
pass runs it on (k, w, v, 1, 1) for the chunk states; the backward on
(q, u * scale, dh, 1 / den, dqn) for the state cotangents (ops/mlstm_chunkwise.py,
`_state_scan`, is the jnp reference).

Layout: BH = batch * heads, T = K * L tokens. Per-token scales and the per-chunk decay
(repeated over its L tokens) are columns [BH, T, 1]; n is a row [.., 1, Dk]. The grid
tiles C into (block_dk, block_dv) tiles, each program owning one tile of one sequence.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from pallas_kernels import compat
from pallas_kernels.mlstm_chunkwise.blocks import BlockSizes


def _update(C, n, decay_col, keys, key_scale, values, value_scale, n_scale):
  """One chunk's step on one (bk, bv) tile. Gate arithmetic in C's dtype; the matmul
  takes its inputs in the activation dtype (keys'), accumulating in C's dtype."""
  acc, mm = C.dtype, keys.dtype
  decay = jnp.max(decay_col)                          # one value repeated over the chunk
  a = keys.astype(acc) * key_scale                    # [L, bk]
  vals = (values.astype(acc) * value_scale).astype(mm)  # [L, bv]
  inc = jax.lax.dot(a.astype(mm).T, vals, preferred_element_type=acc,
                    precision=compat.matmul_precision(mm))
  C = decay * C + inc
  n = decay * n + jnp.sum(a * n_scale, axis=0, keepdims=True)  # [1, bk]
  return C, n


def _loop_kernel(decay_ref, keys_ref, ks_ref, values_ref, vs_ref, ns_ref, C0_ref, n0_ref,
                 C_in_ref, n_in_ref, C_last_ref, n_last_ref, *, chunk, reverse):
  """GPU: this program walks all chunks of one sequence for one tile; the carry stays in
  registers and every entering state is written out."""
  num_chunks = C_in_ref.shape[0]

  def body(step, carry):
    c = num_chunks - 1 - step if reverse else step
    tok = pl.ds(pl.multiple_of(c * chunk, chunk), chunk)
    C_in_ref[c] = carry[0]
    n_in_ref[c] = carry[1]
    return _update(*carry, decay_ref[tok, :], keys_ref[tok, :], ks_ref[tok, :],
                   values_ref[tok, :], vs_ref[tok, :], ns_ref[tok, :])

  C, n = jax.lax.fori_loop(0, num_chunks, body, (C0_ref[...], n0_ref[...]))
  C_last_ref[...] = C
  n_last_ref[...] = n


def _grid_kernel(decay_ref, keys_ref, ks_ref, values_ref, vs_ref, ns_ref, C0_ref, n0_ref,
                 C_in_ref, n_in_ref, C_last_ref, n_last_ref):
  """TPU: the chunk is the last, sequential grid axis; the carry lives in the final-state
  output blocks, which stay resident because their index does not move along it."""
  @pl.when(pl.program_id(3) == 0)
  def _():
    C_last_ref[...] = C0_ref[...]
    n_last_ref[...] = n0_ref[...]

  C, n = C_last_ref[...], n_last_ref[...]
  C_in_ref[...] = C
  # Every (dk, dv) tile program writes n (the same values): on TPU an output block that
  # a program leaves unwritten is still copied back, as garbage.
  n_in_ref[...] = n
  C, n = _update(C, n, decay_ref[...], keys_ref[...], ks_ref[...], values_ref[...],
                 vs_ref[...], ns_ref[...])
  C_last_ref[...] = C
  n_last_ref[...] = n


@functools.partial(jax.jit, static_argnames=("blocks", "reverse", "interpret"))
def state_scan(decay_col, keys, key_scale, values, value_scale, n_scale, C0, n0, *,
               blocks: BlockSizes, reverse: bool, interpret):
  """decay_col, key_scale, value_scale, n_scale [BH, T, 1]; keys [BH, T, Dk];
  values [BH, T, Dv]; C0 [BH, Dk, Dv], n0 [BH, 1, Dk] (the accumulation dtype).

  Returns (C_in [BH, K, Dk, Dv], n_in [BH, K, 1, Dk], C_last, n_last).
  """
  BH, T, Dk = keys.shape
  Dv = values.shape[-1]
  L = blocks.chunk
  K = T // L
  bk, bv = blocks.tiles(Dk, Dv)
  acc = C0.dtype
  out_shape = (jax.ShapeDtypeStruct((BH, K, Dk, Dv), acc),
               jax.ShapeDtypeStruct((BH, K, 1, Dk), acc),
               jax.ShapeDtypeStruct((BH, Dk, Dv), acc),
               jax.ShapeDtypeStruct((BH, 1, Dk), acc))
  grid = (BH, Dk // bk, Dv // bv)
  if blocks.state_scan == "loop":
    seq = lambda width, tile: pl.BlockSpec(  # noqa: E731 (the whole sequence)
        (None, T, width), lambda b, i, j: (b, 0, tile(i, j)))
    in_specs = [seq(1, lambda i, j: 0), seq(bk, lambda i, j: i), seq(1, lambda i, j: 0),
                seq(bv, lambda i, j: j), seq(1, lambda i, j: 0), seq(1, lambda i, j: 0)]
    in_specs += [pl.BlockSpec((None, bk, bv), lambda b, i, j: (b, i, j)),
                 pl.BlockSpec((None, 1, bk), lambda b, i, j: (b, 0, i))]
    out_specs = [pl.BlockSpec((None, K, bk, bv), lambda b, i, j: (b, 0, i, j)),
                 pl.BlockSpec((None, K, 1, bk), lambda b, i, j: (b, 0, 0, i)),
                 pl.BlockSpec((None, bk, bv), lambda b, i, j: (b, i, j)),
                 pl.BlockSpec((None, 1, bk), lambda b, i, j: (b, 0, i))]
    kernel = functools.partial(_loop_kernel, chunk=L, reverse=reverse)
    params = blocks.compiler_params(3)
  else:
    grid = (*grid, K)
    at = (lambda c: K - 1 - c) if reverse else (lambda c: c)  # noqa: E731
    tok = lambda width, tile: pl.BlockSpec(  # noqa: E731 (one chunk)
        (None, L, width), lambda b, i, j, c: (b, at(c), tile(i, j)))
    in_specs = [tok(1, lambda i, j: 0), tok(bk, lambda i, j: i), tok(1, lambda i, j: 0),
                tok(bv, lambda i, j: j), tok(1, lambda i, j: 0), tok(1, lambda i, j: 0)]
    in_specs += [pl.BlockSpec((None, bk, bv), lambda b, i, j, c: (b, i, j)),
                 pl.BlockSpec((None, 1, bk), lambda b, i, j, c: (b, 0, i))]
    out_specs = [pl.BlockSpec((None, None, bk, bv), lambda b, i, j, c: (b, at(c), i, j)),
                 pl.BlockSpec((None, None, 1, bk), lambda b, i, j, c: (b, at(c), 0, i)),
                 pl.BlockSpec((None, bk, bv), lambda b, i, j, c: (b, i, j)),
                 pl.BlockSpec((None, 1, bk), lambda b, i, j, c: (b, 0, i))]
    kernel = _grid_kernel
    params = blocks.compiler_params(3, sequential_axes=1)
  return pl.pallas_call(
      kernel, grid=grid, in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
      compiler_params=params, interpret=interpret,
      name="mlstm_state_scan_reverse" if reverse else "mlstm_state_scan",
  )(decay_col, keys, key_scale, values, value_scale, n_scale, C0, n0)
