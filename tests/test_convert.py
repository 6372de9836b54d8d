"""Weight conversion: logits, step logits and greedy tokens equal the PyTorch references.

Fixtures (tests/fixtures/make_model_fixtures.py): a tiny transformers xLSTMForCausalLM
saved with save_pretrained, and a tiny NX-AI xLSTMLMModel (mLSTM + sLSTM blocks, vanilla
sLSTM backend) as config + state dict; both with perturbed weights, float32.
"""

import json
import pathlib
import shutil

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from helpers import assert_close
from xlstm_jax import convert
from xlstm_jax.convert import safetensors_io
from xlstm_jax import generate
from xlstm_jax.nn import LanguageModel, ModelConfig

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
HF_DIR = FIXTURES / "hf_xlstm_tiny"
HF_REF = np.load(HF_DIR / "reference.npz")
TORCH_REF = np.load(FIXTURES / "torch_xlstm_tiny.npz")
TORCH_CONFIG = json.loads(str(TORCH_REF["config_json"]))
TORCH_SD = {k[len("param/"):]: TORCH_REF[k] for k in TORCH_REF.files if k.startswith("param/")}


def step_logits(model, params, tokens):
  state, out = model.init_state(tokens.shape[0]), []
  for t in range(tokens.shape[1]):
    logits, state = model.apply({"params": params}, tokens[:, t:t + 1], state=state,
                                return_state=True)
    out.append(logits)
  return jnp.concatenate(out, axis=1)


def check_parity(model, params, ref):
  tokens = jnp.asarray(ref["tokens"])
  scale = np.abs(ref["logits"]).max()
  assert_close(model.apply({"params": params}, tokens), ref["logits"], 1e-4 / scale, "logits",
               scale=1.0)
  assert_close(step_logits(model, params, tokens), ref["step_logits"], 1e-4 / scale,
               "step logits", scale=1.0)
  new = ref["generated"].shape[1] - ref["prompt"].shape[1]
  np.testing.assert_array_equal(generate(model, params, ref["prompt"], new), ref["generated"])


@pytest.mark.parametrize("backend", ["chunkwise", "recurrent"])
def test_load_hf_parity(backend):
  model, params = convert.load_hf(HF_DIR, backend=backend)
  check_parity(model, params, HF_REF)


@pytest.mark.parametrize("backend", ["chunkwise", "parallel"])
def test_from_torch_xlstm_parity(backend):
  model, params = convert.from_torch_xlstm(TORCH_CONFIG, TORCH_SD, backend=backend)
  assert model.cfg.block_types == ("mlstm", "slstm", "mlstm")
  check_parity(model, params, TORCH_REF)


def test_from_torch_xlstm_cuda_layout():
  """The CUDA sLSTM backend stores R as [H, D_in, 4*D] and the bias head-major."""
  config = json.loads(json.dumps(TORCH_CONFIG))
  config["slstm_block"]["slstm"]["backend"] = "cuda"
  sd = dict(TORCH_SD)
  key = "xlstm_block_stack.blocks.1.xlstm.slstm_cell."
  H, D = 4, 16
  r = TORCH_REF["ext/" + key + "recurrent_kernel"]  # the reference's external [H, D, 4, D]
  b = TORCH_REF["ext/" + key + "bias"]               # external [H, 4, D]
  sd[key + "_recurrent_kernel_"] = r.reshape(H, D, 4 * D)
  sd[key + "_bias_"] = b.reshape(-1)
  model, params = convert.from_torch_xlstm(config, sd)
  logits = model.apply({"params": params}, jnp.asarray(TORCH_REF["tokens"]))
  assert_close(logits, TORCH_REF["logits"], 1e-5, "cuda-layout logits")


def test_save_hf_writes_the_transformers_layout(tmp_path):
  model, params = convert.load_hf(HF_DIR)
  convert.save_hf(model, params, tmp_path)
  theirs = safetensors_io.read_checkpoint(HF_DIR)
  ours = safetensors_io.read_checkpoint(tmp_path)
  assert sorted(ours) == sorted(theirs)
  for name in theirs:
    assert ours[name].dtype == theirs[name].dtype, name
    np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
  cfg_theirs = json.loads((HF_DIR / "config.json").read_text())
  cfg_ours = json.loads((tmp_path / "config.json").read_text())
  for key in ("model_type", "vocab_size", "hidden_size", "num_blocks", "num_heads",
              "qk_dim_factor", "v_dim_factor", "ffn_proj_factor", "norm_eps", "gate_soft_cap",
              "output_logit_soft_cap", "weight_mode", "use_bias", "tie_word_embeddings"):
    assert cfg_ours[key] == cfg_theirs[key], key


def test_scan_layout_round_trip(tmp_path):
  model, params = convert.load_hf(HF_DIR, scan_blocks=True)
  assert set(params["stack"]) == {"blocks"}
  tokens = jnp.asarray(HF_REF["tokens"])
  assert_close(model.apply({"params": params}, tokens), HF_REF["logits"], 1e-4, "scan logits")
  convert.save_hf(model, params, tmp_path)
  again, params2 = convert.load_hf(tmp_path)
  assert_close(again.apply({"params": params2}, tokens), HF_REF["logits"], 1e-4, "reloaded")


def test_fused_weight_mode(tmp_path):
  tensors = safetensors_io.read_checkpoint(HF_DIR)
  fused = {}
  for name, arr in tensors.items():
    if ".mlstm_layer." in name and name.split(".")[-2] in ("k", "v", "ogate_preact",
                                                          "fgate_preact"):
      continue
    layer = name.rsplit(".", 2)[0]
    if name.endswith("mlstm_layer.q.weight"):
      fused[layer + ".qkv_opreact.weight"] = np.concatenate(
          [tensors[f"{layer}.{n}.weight"] for n in ("q", "k", "v", "ogate_preact")])
    elif name.endswith("igate_preact.weight") or name.endswith("igate_preact.bias"):
      kind = name.rsplit(".", 1)[1]
      fused[f"{layer}.ifgate_preact.{kind}"] = np.concatenate(
          [arr, tensors[name.replace("igate", "fgate")]])
    else:
      fused[name] = arr
  safetensors_io.write_file(tmp_path / "model.safetensors", fused)
  config = json.loads((HF_DIR / "config.json").read_text())
  (tmp_path / "config.json").write_text(json.dumps({**config, "weight_mode": "fused"}))
  model, params = convert.load_hf(tmp_path)
  assert_close(model.apply({"params": params}, jnp.asarray(HF_REF["tokens"])),
               HF_REF["logits"], 1e-4, "fused logits")


def test_conversion_errors_name_the_problem(tmp_path):
  sd = dict(TORCH_SD)
  sd.pop("lm_head.weight")
  with pytest.raises(ValueError, match="no 'lm_head.weight'"):
    convert.from_torch_xlstm(TORCH_CONFIG, sd)
  with pytest.raises(ValueError, match="no counterpart in the model: \\['stray'\\]"):
    convert.from_torch_xlstm(TORCH_CONFIG, {**TORCH_SD, "stray": np.zeros(3)})
  bad = {**TORCH_SD, "token_embedding.weight": np.zeros((5, 64), np.float32)}
  with pytest.raises(ValueError, match="embedding has shape \\(5, 64\\), the model expects"):
    convert.from_torch_xlstm(TORCH_CONFIG, bad)
  shutil.copytree(HF_DIR, tmp_path / "m")
  config = json.loads((HF_DIR / "config.json").read_text())
  (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
  with pytest.raises(ValueError, match="model_type='llama', expected 'xlstm'"):
    convert.load_hf(tmp_path / "m")
  with pytest.raises(FileNotFoundError, match="neither model.safetensors"):
    safetensors_io.read_checkpoint(tmp_path)
  with pytest.raises(ValueError, match="not arch='xlstm'"):
    convert.save_hf(LanguageModel(ModelConfig()), {}, tmp_path / "x")


def test_safetensors_dtypes_round_trip(tmp_path):
  tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
             "b": np.linspace(-2, 2, 5).astype(ml_dtypes.bfloat16),
             "c": np.array([1, 2], np.int64)}
  safetensors_io.write_file(tmp_path / "t.safetensors", tensors, {"format": "pt"})
  back = safetensors_io.read_file(tmp_path / "t.safetensors")
  for k in tensors:
    assert back[k].dtype == tensors[k].dtype
    np.testing.assert_array_equal(back[k], tensors[k])
