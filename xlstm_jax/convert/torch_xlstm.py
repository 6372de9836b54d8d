"""NX-AI `xlstm` PyTorch xLSTMLMModel (mLSTM and sLSTM blocks) -> this codebase.

  model, params = from_torch_xlstm(config, state_dict)
config: dataclasses.asdict(xLSTMLMModelConfig); state_dict: {name: numpy array}. Torch is
not needed: the state dict may come from `torch.load(...)` converted with `.numpy()` or from
an npz. The layout notes below are the reference's, verified by the parity tests.
"""

from __future__ import annotations

import numpy as np

from xlstm_jax.convert.common import build_params
from xlstm_jax.nn.config import ModelConfig
from xlstm_jax.nn.lm import LanguageModel

_FFN_ACTS = {"gelu": "gelu", "swish": "silu", "relu": "relu"}
_BIAS_INITS = {"powerlaw_blockdependent": "powerlaw_blockdependent", "small_init": "linspace",
               "zeros": "zeros"}


def config_from_torch_xlstm(config: dict, **overrides) -> ModelConfig:
  """ModelConfig of an asdict(xLSTMLMModelConfig)."""
  def fail(msg):
    raise ValueError(f"xLSTMLMModelConfig: {msg}")
  E, L = config["embedding_dim"], config["num_blocks"]
  if config.get("bias", False):
    fail("bias=True is not supported (the reference adds biases to some layers only)")
  mblock, sblock = config.get("mlstm_block"), config.get("slstm_block")
  slstm_at = config.get("slstm_at", [])
  if mblock is None or slstm_at == "all":
    slstm_at = list(range(L))
  fields = dict(arch="xlstm", vocab_size=config["vocab_size"], embedding_dim=E, num_blocks=L,
                slstm_at=tuple(slstm_at), tie_embeddings=config.get("tie_weights", False),
                add_post_blocks_norm=config.get("add_post_blocks_norm", True), norm_eps=1e-5)
  if mblock is not None:
    m = mblock["mlstm"]
    if m.get("round_proj_up_to_multiple_of", 64) != 64 or not m.get("round_proj_up_dim_up", True):
      fail("the mLSTM up-projection must round up to a multiple of 64")
    fields.update(num_heads=m["num_heads"], mlstm_proj_factor=m["proj_factor"],
                  conv_kernel_size=m["conv1d_kernel_size"],
                  qkv_proj_blocksize=m["qkv_proj_blocksize"])
  if sblock is not None and slstm_at:
    s, ffn = sblock["slstm"], sblock.get("feedforward")
    if ffn is None:
      fail("sLSTM blocks without a feed-forward are not supported")
    if s.get("bias_init") not in _BIAS_INITS:
      fail(f"slstm bias_init={s.get('bias_init')!r} is not one of {sorted(_BIAS_INITS)}")
    if ffn["act_fn"] not in _FFN_ACTS:
      fail(f"feedforward act_fn={ffn['act_fn']!r} is not one of {sorted(_FFN_ACTS)}")
    if not s.get("group_norm_weight", True):
      fail("group_norm_weight=False is not supported")
    fields.update(slstm_num_heads=s["num_heads"], slstm_conv_kernel_size=s["conv1d_kernel_size"],
                  slstm_cell={"slstm": "slstm", "lstm": "lstm"}[s.get("function", "slstm")],
                  slstm_fgate_bias_init=_BIAS_INITS[s["bias_init"]],
                  ffn_proj_factor=ffn["proj_factor"],
                  ffn_round_to=ffn.get("round_proj_up_to_multiple_of", 64),
                  ffn_act=_FFN_ACTS[ffn["act_fn"]])
  return ModelConfig(**{**fields, **overrides})


def _headwise(w):
  """[heads, out, in] -> our [heads, in, out]."""
  return np.transpose(w, (0, 2, 1))


def _conv(w):
  """nn.Conv1d depthwise weight [F, 1, K] -> our [K, F]."""
  return np.ascontiguousarray(w[:, 0, :].T)


def _recurrent_kernel(w, backend, H, D):
  """The cell's internal R -> our r [H, D_in, 4, D_out]."""
  if backend == "vanilla":  # [H, 4*D (gate, out), D_in]
    return np.transpose(w.reshape(H, 4, D, D), (0, 3, 1, 2))
  return w.reshape(H, D, 4, D)  # cuda: [H, D_in, 4*D (gate, out)]


def _slstm_bias(b, backend, H, D):
  """The cell's flat internal bias -> our b [4, H, D]."""
  if backend == "vanilla":  # gate-major
    return b.reshape(4, H, D)
  return np.transpose(b.reshape(H, 4, D), (1, 0, 2))  # cuda: head-major


def from_torch_xlstm(config: dict, state_dict: dict, **overrides):
  """(model, params) of an xLSTMLMModel. `overrides` set execution fields of the config."""
  cfg = config_from_torch_xlstm(config, **overrides)
  sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}
  used = set()

  def take(key):
    if key not in sd:
      raise ValueError(f"state_dict has no {key!r}")
    used.add(key)
    return sd[key]

  flat = {"embedding": take("token_embedding.weight")}
  if cfg.tie_embeddings:
    used.add("lm_head.weight")
  else:
    flat["lm_head/kernel"] = take("lm_head.weight").T
  if cfg.add_post_blocks_norm:
    flat["post_norm/scale"] = take("xlstm_block_stack.post_blocks_norm.weight")
  backend = (config.get("slstm_block") or {}).get("slstm", {}).get("backend", "cuda")
  for i, kind in enumerate(cfg.block_types):
    src, dst = f"xlstm_block_stack.blocks.{i}.", f"stack/block_{i}/"
    flat[dst + "norm/scale"] = take(src + "xlstm_norm.weight")
    x = src + "xlstm."
    conv_k = cfg.conv_kernel_size if kind == "mlstm" else cfg.slstm_conv_kernel_size
    if conv_k > 0:
      flat[dst + "conv/kernel"] = _conv(take(x + "conv1d.conv.weight"))
      flat[dst + "conv/bias"] = take(x + "conv1d.conv.bias")
    if kind == "mlstm":
      flat[dst + "proj_up/kernel"] = take(x + "proj_up.weight").T
      for name in "qkv":
        flat[dst + f"{name}/kernel"] = _headwise(take(x + f"{name}_proj.weight"))
      for gate in ("igate", "fgate"):
        flat[dst + f"{gate}/kernel"] = take(x + f"mlstm_cell.{gate}.weight").T
        flat[dst + f"{gate}/bias"] = take(x + f"mlstm_cell.{gate}.bias")
      flat[dst + "outnorm/scale"] = take(x + "mlstm_cell.outnorm.weight")
      flat[dst + "skip"] = take(x + "learnable_skip")
      flat[dst + "proj_down/kernel"] = take(x + "proj_down.weight").T
    else:
      H = cfg.slstm_num_heads
      D = cfg.embedding_dim // H
      # The reference feeds its `fgate` projection to the cell's input gate and its `igate`
      # projection to the forget gate (sLSTMLayer.forward); we name them by role.
      flat[dst + "igate/kernel"] = _headwise(take(x + "fgate.weight"))
      flat[dst + "fgate/kernel"] = _headwise(take(x + "igate.weight"))
      flat[dst + "zgate/kernel"] = _headwise(take(x + "zgate.weight"))
      flat[dst + "ogate/kernel"] = _headwise(take(x + "ogate.weight"))
      flat[dst + "recurrent_kernel"] = _recurrent_kernel(
          take(x + "slstm_cell._recurrent_kernel_"), backend, H, D)
      flat[dst + "bias"] = _slstm_bias(take(x + "slstm_cell._bias_"), backend, H, D)
      flat[dst + "outnorm/scale"] = take(x + "group_norm.weight")
      flat[dst + "norm_ffn/scale"] = take(src + "ffn_norm.weight")
      up = take(src + "ffn.proj_up.weight")
      gate, lin = np.split(up, 2, axis=0)
      flat[dst + "ffn/gate/kernel"], flat[dst + "ffn/up/kernel"] = gate.T, lin.T
      flat[dst + "ffn/down/kernel"] = take(src + "ffn.proj_down.weight").T
  unused = sorted(set(sd) - used)
  if unused:
    raise ValueError(f"state_dict entries with no counterpart in the model: {unused}")
  model = LanguageModel(cfg)
  if not cfg.memory_mixing:
    flat = {k: v for k, v in flat.items() if not k.endswith("recurrent_kernel")}
  return model, build_params(model, flat, "from_torch_xlstm")
