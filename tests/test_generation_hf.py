"""Generation as transformers does it: EOS stop + padding, ragged prompts, top-p, streaming,
the CLI. Parity uses the tiny HF fixture (tests/fixtures/hf_xlstm_tiny, reference.npz holds
transformers' greedy `generate` tokens; see make_model_fixtures.py)."""

import io
import json
import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlstm_jax import convert, presets
from xlstm_jax.generation import generate, stream
from xlstm_jax.generation_cli import main
from xlstm_jax.nn import LanguageModel, init_params
from xlstm_jax.training.pretrained import hf_special_ids, load_pretrained

HF_DIR = pathlib.Path(__file__).parent / "fixtures" / "hf_xlstm_tiny"
HF_REF = np.load(HF_DIR / "reference.npz")


def hf_eos_rule(generated, prompt_len, eos, pad):
  """transformers' greedy loop with eos_token_id=eos applied to its own recorded tokens
  (greedy tokens up to a row's first EOS do not depend on the EOS): after a row's EOS every
  token is `pad`, and the loop ends at the step where every row has ended."""
  out = np.array(generated)
  ended_at = []
  for row in out:
    hits = np.flatnonzero(row[prompt_len:] == eos)
    end = prompt_len + hits[0] + 1 if hits.size else len(row)
    row[end:] = pad
    ended_at.append(end)
  return out[:, :max(ended_at)]


@pytest.fixture(scope="module")
def hf():
  return convert.load_hf(HF_DIR)


def test_eos_stop_matches_transformers(hf):
  model, params = hf
  prompt, ref = HF_REF["prompt"], HF_REF["generated"]
  P, new = prompt.shape[1], ref.shape[1] - prompt.shape[1]
  # 89: row 1 ends at its 4th new token, row 0 never emits it; 40: both end at once
  for eos, width in ((int(ref[1, P + 3]), ref.shape[1]), (int(ref[0, P]), P + 1)):
    expected = hf_eos_rule(ref, P, eos, pad=1)
    assert expected.shape[1] == width
    out = np.asarray(generate(model, params, prompt, new, eos_id=eos, pad_id=1))
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out[:, :width], expected)
    assert (out[:, width:] == 1).all()
  # without an EOS it is transformers' full greedy output
  np.testing.assert_array_equal(generate(model, params, prompt, new), ref)


def test_eos_and_pad_come_from_the_hf_config(tmp_path):
  shutil.copytree(HF_DIR, tmp_path / "m")
  cfg = json.loads((tmp_path / "m" / "config.json").read_text())
  cfg["eos_token_id"] = [7, 9]
  (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
  assert hf_special_ids(tmp_path / "m") == ((7, 9), 1)
  gen = json.loads((tmp_path / "m" / "generation_config.json").read_text())
  gen["eos_token_id"] = 5
  (tmp_path / "m" / "generation_config.json").write_text(json.dumps(gen))
  pre = load_pretrained(tmp_path / "m")
  assert pre.eos_ids == (5,) and pre.pad_id == 1 and pre.tokenizer is None
  assert hf_special_ids(HF_DIR) == ((), 1)  # the fixture has eos_token_id null


def test_ragged_prompts_equal_each_alone(hf):
  model, params = hf
  rng = np.random.default_rng(0)
  prompts = [rng.integers(3, 97, n).tolist() for n in (3, 9, 6)]
  out = np.asarray(generate(model, params, prompts, 7, eos_id=2, pad_id=1))
  assert out.shape == (3, 9 + 7)
  for b, p in enumerate(prompts):
    alone = np.asarray(generate(model, params, [p], 7, eos_id=2, pad_id=1))[0]
    np.testing.assert_array_equal(out[b, :len(p) + 7], alone)
    assert (out[b, len(p) + 7:] == 1).all()
  # a right-padded array with prompt_lengths is the same request
  arr = np.full((3, 9), 50, np.int32)
  for b, p in enumerate(prompts):
    arr[b, :len(p)] = p
  np.testing.assert_array_equal(
      generate(model, params, arr, 7, eos_id=2, pad_id=1, prompt_lengths=[3, 9, 6]), out)


def test_ragged_llama_kv_cache():
  model = LanguageModel(presets.model_config("llama_tiny", vocab_size=64))
  params = init_params(model, jax.random.key(0))
  prompts = [[1, 2, 3], [4, 5, 6, 7, 8]]
  out = np.asarray(generate(model, params, prompts, 4))
  for b, p in enumerate(prompts):
    np.testing.assert_array_equal(out[b, :len(p) + 4],
                                  np.asarray(generate(model, params, [p], 4))[0])


def test_top_p(hf):
  model, params = hf
  prompt = HF_REF["prompt"]
  key = jax.random.key(1)
  greedy = generate(model, params, prompt, 5)
  np.testing.assert_array_equal(
      generate(model, params, prompt, 5, temperature=1.0, rng=key, top_p=1e-6), greedy)
  np.testing.assert_array_equal(
      generate(model, params, prompt, 6, temperature=1.0, rng=key, top_p=1.0),
      generate(model, params, prompt, 6, temperature=1.0, rng=key))
  # each token drawn with top_p=0.5 lies in its prefix's 50% nucleus
  s = np.asarray(generate(model, params, prompt, 6, temperature=1.5, rng=key, top_p=0.5))
  logits = model.apply({"params": params}, jnp.asarray(s[:, :-1])) / 1.5
  probs = np.asarray(jax.nn.softmax(logits, axis=-1))
  P = prompt.shape[1]
  for b in range(2):
    for t in range(P, P + 6):
      p = probs[b, t - 1]
      above = p[p > p[s[b, t]]].sum()  # mass ranked above the drawn token
      assert above < 0.5


def test_stream_equals_generate(hf):
  model, params = hf
  prompt = HF_REF["prompt"]
  P = prompt.shape[1]
  for kw in ({}, {"temperature": 0.8, "top_k": 20, "rng": jax.random.key(2)}):
    full = np.asarray(generate(model, params, prompt, 8, eos_id=int(HF_REF["generated"][1, P + 2]),
                               pad_id=1, **kw))
    steps = list(stream(model, params, prompt, 8, eos_id=int(HF_REF["generated"][1, P + 2]),
                        pad_id=1, **kw))
    got = np.stack(steps, axis=1)
    np.testing.assert_array_equal(got, full[:, P:P + got.shape[1]])
    assert (full[:, P + got.shape[1]:] == 1).all()


def test_cli_streams_hf_tokens(capsys):
  P = HF_REF["prompt"].shape[1]
  ids = ",".join(str(t) for t in HF_REF["prompt"][0])
  buf = io.StringIO()
  got = main([f"--model={HF_DIR}", f"--tokens={ids}", "--max_new_tokens=12"], out=buf)
  assert got == [HF_REF["generated"][0, P:].tolist()]
  assert buf.getvalue().strip().endswith(",".join(str(t) for t in HF_REF["generated"][0, P:]))
  eos = int(HF_REF["generated"][1, P + 3])
  ids1 = ",".join(str(t) for t in HF_REF["prompt"][1])
  got = main([f"--model={HF_DIR}", f"--tokens={ids1}", f"--eos_id={eos}"], out=io.StringIO())
  assert got == [HF_REF["generated"][1, P:P + 4].tolist()]
  with pytest.raises(SystemExit, match="came without a tokenizer"):
    main([f"--model={HF_DIR}", "--prompt=hi"], out=io.StringIO())
  with pytest.raises(SystemExit):
    main(["--help"])
  assert "Hugging Face" in capsys.readouterr().out
  # the module entry point, as a user runs it
  root = pathlib.Path(__file__).parents[1]
  run = subprocess.run([sys.executable, "-m", "xlstm_jax.generate", f"--model={HF_DIR}",
                        f"--tokens={ids}", "--max_new_tokens=3"], capture_output=True,
                       text=True, cwd=root, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.strip().endswith(",".join(str(t) for t in HF_REF["generated"][0, P:P + 3]))


def test_errors(hf, tmp_path):
  model, params = hf
  with pytest.raises(ValueError, match="top_p=1.5"):
    generate(model, params, [[1, 2]], 2, top_p=1.5)
  with pytest.raises(ValueError, match=r"prompt_lengths=\[3, 1\]"):
    generate(model, params, np.ones((2, 2), np.int32), 2, prompt_lengths=[3, 1])
  with pytest.raises(ValueError, match=r"stream takes prompts of one length; got lengths \[1, 2\]"):
    next(stream(model, params, [[1], [2, 3]], 2))
  with pytest.raises(ValueError, match="prefill_len=3 must be an int in \\[1, 2\\]"):
    generate(model, params, [[1, 2], [3, 4, 5]], 2, prefill_len=3)
  with pytest.raises(ValueError, match="needs >= 1 token"):
    generate(model, params, [[1, 2], []], 2)
  with pytest.raises(ValueError, match="has no config.json"):
    load_pretrained(tmp_path)
  (tmp_path / "config.json").write_text('{"model_type": "llama"}')
  with pytest.raises(ValueError, match="model_type='llama'"):
    load_pretrained(tmp_path)
