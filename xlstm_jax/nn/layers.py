"""Layers shared by the blocks: norms, causal conv, headwise linear, gated FFN, inits.

Shapes: B batch, T time, E features, H heads, D per-head features, K conv taps.
Every parameter carries logical axis names; `xlstm_jax.sharding` maps them to the mesh.
Norm statistics are computed in float32 whatever the activation dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Init = Callable[..., jax.Array]


def small_init(dim: int) -> Init:
  """N(0, 2 / (5 dim)): "Transformers without Tears" init used by the references."""
  return nn.initializers.normal(stddev=math.sqrt(2.0 / (5.0 * dim)))


def wang_init(dim: int, num_blocks: int) -> Init:
  """N(0, (2 / num_blocks / sqrt(dim))^2): scaled init of residual output projections."""
  return nn.initializers.normal(stddev=2.0 / num_blocks / math.sqrt(dim))


def linspace_init(start: float, stop: float) -> Init:
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.linspace(start, stop, math.prod(shape), dtype=dtype).reshape(shape)
  return init


def constant_normal_init(mean: float, stddev: float) -> Init:
  def init(key, shape, dtype=jnp.float32):
    return (mean + stddev * jax.random.normal(key, shape)).astype(dtype)
  return init


def torch_conv_init(fan_in: int) -> Init:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default Conv1d init, kept for parity."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def param(module: nn.Module, name: str, init: Init, shape: Sequence[int],
          axes: Sequence[str | None], dtype) -> jax.Array:
  """A parameter with logical axis names."""
  return module.param(name, nn.with_logical_partitioning(init, tuple(axes)), tuple(shape),
                      dtype)


def token_dot(x, w):
  """x [..., in] @ w [in, out] as one 2-D dot over the flattened tokens. Kept 3-D
  ([B, T, in]), XLA:CPU builds the weight gradient from a transposed copy of the output
  gradient fused with the elementwise backward before it, written with strided stores; the
  2-D dot's copy is a plain transpose (train step 7-17% faster on CPU, docs/design.md)."""
  return jnp.dot(x.reshape(-1, x.shape[-1]), w).reshape(*x.shape[:-1], w.shape[-1])


class Dense(nn.Module):
  """y = x W (+ b), W [in, out] with logical axes `axes`."""

  features: int
  axes: tuple[str | None, str | None]
  kernel_init: Init = nn.initializers.lecun_normal()
  bias_init: Init = nn.initializers.zeros
  use_bias: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = param(self, "kernel", self.kernel_init, (x.shape[-1], self.features), self.axes,
              self.param_dtype)
    y = token_dot(x.astype(self.dtype), w.astype(self.dtype))
    if self.use_bias:
      b = param(self, "bias", self.bias_init, (self.features,), self.axes[1:], self.param_dtype)
      y = y + b.astype(self.dtype)
    return y


class RMSNorm(nn.Module):
  """x / rms(x) * scale (+ bias) over the last axis."""

  eps: float = 1e-6
  use_bias: bool = False
  axis_name: str | None = "embed"
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    return _scale_and_shift(self, _rms_normalize(x, self.eps), x.shape[-1], residual_scale=False)


class LayerNorm(nn.Module):
  """Layer norm over the last axis with an optional bias.

  residual_scale=True stores the scale as an offset from one (scale = 1 + w, w init 0),
  the convention of the NX-AI xlstm package.
  """

  eps: float = 1e-5
  use_bias: bool = False
  residual_scale: bool = False
  axis_name: str | None = "embed"
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    y = _layer_normalize(x, self.eps)
    return _scale_and_shift(self, y, x.shape[-1], self.residual_scale)


class MultiHeadNorm(nn.Module):
  """Normalizes each head of x [..., H, D] over D; scale/bias span all H*D features.

  kind="layer" is the per-head group norm of the xLSTM blocks; "rms" the RMS variant.
  Returns [..., H*D].
  """

  kind: str = "layer"
  eps: float = 1e-5
  use_bias: bool = False
  residual_scale: bool = False
  axis_name: str | None = "mlp"
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.kind == "layer":
      y = _layer_normalize(x, self.eps)
    elif self.kind == "rms":
      y = _rms_normalize(x, self.eps)
    else:
      raise ValueError(f"kind={self.kind!r} is not one of ('layer', 'rms')")
    y = y.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])
    return _scale_and_shift(self, y, y.shape[-1], self.residual_scale)


def _rms_normalize(x, eps):
  x32 = x.astype(jnp.float32)
  return (x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + eps)).astype(x.dtype)


def _layer_normalize(x, eps):
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, -1, keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), -1, keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def _scale_and_shift(module, y, features, residual_scale):
  init = nn.initializers.zeros if residual_scale else nn.initializers.ones
  scale = param(module, "scale", init, (features,), (module.axis_name,), module.param_dtype)
  scale = (1.0 + scale) if residual_scale else scale
  y = y * scale.astype(y.dtype)
  if module.use_bias:
    bias = param(module, "bias", nn.initializers.zeros, (features,), (module.axis_name,),
                 module.param_dtype)
    y = y + bias.astype(y.dtype)
  return y


class CausalConv1D(nn.Module):
  """Causal depthwise conv: y_t = sum_j kernel[j] * x_{t-K+1+j} (+ bias).

  The state is the last K-1 inputs [B, K-1, F] (zeros at the start), so a sequence can be
  continued token by token. Returns (y [B, T, F], new state).
  """

  kernel_size: int = 4
  use_bias: bool = True
  axis_name: str | None = "mlp"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, state=None):
    K, F = self.kernel_size, x.shape[-1]
    if state is None:
      state = jnp.zeros((x.shape[0], K - 1, F), x.dtype)
    if state.shape != (x.shape[0], K - 1, F):
      raise ValueError(f"conv state.shape={state.shape}, expected {(x.shape[0], K - 1, F)}")
    kernel = param(self, "kernel", torch_conv_init(K), (K, F), ("conv", self.axis_name),
                   self.param_dtype).astype(self.dtype)
    xp = jnp.concatenate([state.astype(self.dtype), x.astype(self.dtype)], axis=1)
    T = x.shape[1]
    y = sum(kernel[j] * xp[:, j:j + T] for j in range(K))
    if self.use_bias:
      y = y + param(self, "bias", torch_conv_init(K), (F,), (self.axis_name,),
                    self.param_dtype).astype(self.dtype)
    return y, xp[:, T:]


# In-block widths up to this run as a broadcast multiply-add (the mLSTM's q, k, v with
# qkv_proj_blocksize 4), wider ones as an einsum (the sLSTM's head-sized blocks).
ELEMENTWISE_MAX_BLOCK = 8


class HeadwiseLinear(nn.Module):
  """Block-diagonal linear map: x [..., H*I] -> [..., H*O], one [I, O] block per head."""

  num_heads: int
  features: int | None = None  # output width; default the input width
  kernel_init: Init = nn.initializers.lecun_normal()
  use_bias: bool = False
  axis_name: str | None = "mlp"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    n_in = x.shape[-1]
    n_out = self.features or n_in
    H = self.num_heads
    if n_in % H or n_out % H:
      raise ValueError(f"widths in={n_in}, out={n_out} must be divisible by num_heads={H}")
    w = param(self, "kernel", self.kernel_init, (H, n_in // H, n_out // H),
              (self.axis_name, None, None), self.param_dtype)
    xh = x.astype(self.dtype).reshape(*x.shape[:-1], H, n_in // H)
    if n_in // H <= ELEMENTWISE_MAX_BLOCK:
      # sum_i x[..., h, i] * w[h, i, :] as one fused elementwise loop (accumulated in at least
      # float32): as an einsum, XLA makes it a batched dot of tiny blocks with transposes of
      # x around it, 4x slower in the benchmark's training step on CPU.
      acc = jnp.promote_types(self.dtype, jnp.float32)
      xa, wa = xh.reshape(-1, H, n_in // H).astype(acc), w.astype(acc)
      y = sum(xa[..., i, None] * wa[:, i] for i in range(n_in // H)).astype(self.dtype)
    else:
      y = jnp.einsum("...hi,hio->...ho", xh, w.astype(self.dtype))
    y = y.reshape(*x.shape[:-1], n_out)
    if self.use_bias:
      y = y + param(self, "bias", nn.initializers.zeros, (n_out,), (self.axis_name,),
                    self.param_dtype).astype(self.dtype)
    return y


ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # PyTorch's default gelu is exact
    "silu": jax.nn.silu,
    "relu": jax.nn.relu,
}


class GatedFFN(nn.Module):
  """down(act(gate(x)) * up(x)); act=silu is SwiGLU."""

  hidden: int
  act: str = "gelu"
  use_bias: bool = False
  gate_init: Init = nn.initializers.lecun_normal()
  up_init: Init = nn.initializers.lecun_normal()
  down_init: Init = nn.initializers.lecun_normal()
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kw = dict(use_bias=self.use_bias, dtype=self.dtype, param_dtype=self.param_dtype)
    gate = Dense(self.hidden, ("embed", "mlp"), self.gate_init, name="gate", **kw)(x)
    up = Dense(self.hidden, ("embed", "mlp"), self.up_init, name="up", **kw)(x)
    return Dense(x.shape[-1], ("mlp", "embed"), self.down_init, name="down", **kw)(
        ACTIVATIONS[self.act](gate) * up)
