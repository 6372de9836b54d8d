"""lm-evaluation-harness adapter: its numbers equal our model's, and the CLI runs local tasks.

The model is a random `large_tiny` xLSTM (byte vocabulary) saved as a Hugging Face directory;
the tasks are the YAMLs over tests/fixtures/lm_eval_tiny/tiny.jsonl (offline).
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lm_eval.api.instance import Instance

from xlstm_jax import convert, presets
from xlstm_jax.evaluation.harness import XLSTMHarnessModel, cut_at_stop, harness_argv, main
from xlstm_jax.evaluation.scoring import bucket_length, token_logprobs
from xlstm_jax.generation import generate
from xlstm_jax.nn import LanguageModel, init_params
from xlstm_jax.training.evaluate import make_eval_loss

TASKS = pathlib.Path(__file__).parent / "fixtures" / "lm_eval_tiny"
EOS = 256


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("hf") / "m"
  model = LanguageModel(presets.model_config("large_tiny", vocab_size=257, num_blocks=2))
  convert.save_hf(model, init_params(model, jax.random.key(0)), path)
  cfg = json.loads((path / "config.json").read_text())
  cfg.update(eos_token_id=EOS, pad_token_id=EOS, bos_token_id=EOS)
  (path / "config.json").write_text(json.dumps(cfg))
  return path


@pytest.fixture(scope="module")
def lm(hf_dir):
  return XLSTMHarnessModel(pretrained=str(hf_dir), tokenizer="byte", batch_size=3, window=16,
                           max_gen_toks=10)


def req(kind, *args):
  return Instance(request_type=kind, doc={}, arguments=tuple(args), idx=0)


PAD_TO = 96  # one compiled reference forward: right padding never reaches earlier positions


@pytest.fixture(scope="module")
def log_probs(lm):
  """Our model's log-softmax over one whole sequence (one full forward, jitted once)."""
  forward = jax.jit(lambda p, t: jax.nn.log_softmax(lm.pre.model.apply({"params": p}, t), -1))

  def run(ids):
    assert len(ids) <= PAD_TO
    return np.asarray(forward(lm.pre.params, jnp.asarray([ids + [0] * (PAD_TO - len(ids))])))[0]
  return run


def summed_logprobs(log_probs, context_ids, cont_ids):
  """Our model's sum of log p(continuation tokens | everything before)."""
  logp, n = log_probs(context_ids + cont_ids), len(context_ids)
  return float(sum(logp[n - 1 + j, t] for j, t in enumerate(cont_ids)))


def test_loglikelihood_equals_summed_token_logprobs(lm, log_probs):
  pairs = [("The sky is", " blue"), ("", "Hello there"), ("Two plus two is", " four"),
           ("A much longer context that runs past one sixteen-token window", " yes"),
           ("x", "y")]
  got = lm.loglikelihood([req("loglikelihood", c, k) for c, k in pairs])
  for (context, cont), (lp, greedy) in zip(pairs, got):
    expected = summed_logprobs(log_probs, [EOS, *context.encode()], list(cont.encode()))
    np.testing.assert_allclose(lp, expected, rtol=1e-4, atol=1e-4)
    assert isinstance(greedy, bool)


def test_trailing_context_space_moves_to_the_continuation(lm, log_probs):
  (a, _), (b, _) = lm.loglikelihood([req("loglikelihood", "Two plus two is ", "four"),
                                     req("loglikelihood", "Two plus two is", " four")])
  assert a == pytest.approx(b, abs=1e-5)
  assert a == pytest.approx(summed_logprobs(log_probs, [EOS, *b"Two plus two is"], list(b" four")),
                            abs=1e-4)


def test_greedy_flag(lm):
  ctx = [EOS, *b"Fire is"]
  new = np.asarray(generate(lm.pre.model, lm.pre.params, [ctx], 3))[0, len(ctx):].tolist()
  other = [new[0], new[1], (new[2] + 1) % 257]
  (_, greedy), (_, not_greedy) = lm._score([(ctx, new), (ctx, other)])
  assert greedy and not not_greedy


def test_rolling_equals_eval_loss(lm):
  texts = [json.loads(line)["text"] for line in (TASKS / "tiny.jsonl").read_text().splitlines()]
  got = lm.loglikelihood_rolling([req("loglikelihood_rolling", t) for t in texts])
  eval_loss = make_eval_loss(lm.pre.model)
  assert max(len(t.encode()) for t in texts) > 3 * 16  # the state crosses windows of 16
  for text, lp in zip(texts, got):
    ids = [EOS, *text.encode()]
    assert len(ids) <= 128
    n = len(ids) - 1  # eval.py's loss over one row, padded to 128 with the padding masked out
    pad = [0] * (128 - n)
    batch = {"inputs": jnp.asarray([ids[:-1] + pad]), "targets": jnp.asarray([ids[1:] + pad]),
             "mask": jnp.asarray([[1] * n + pad])}
    loss, _ = eval_loss(lm.pre.params, batch)
    np.testing.assert_allclose(-lp / (len(ids) - 1), float(loss), rtol=1e-5)


def test_generate_until_equals_greedy_cut(lm, log_probs):
  contexts = ["The sky is", "A", "Water freezes when it is"]
  until = ["e", "\n"]
  got = lm.generate_until([req("generate_until", c, {"until": until, "max_gen_toks": 9})
                           for c in contexts])
  for context, text in zip(contexts, got):
    ids = [EOS, *context.encode()]
    new = []
    for _ in range(9):  # greedy by recomputing the whole sequence, stopping at EOS
      nxt = int(np.argmax(log_probs(ids + new)[len(ids) + len(new) - 1]))
      if nxt == EOS:
        break
      new.append(nxt)
    full = bytes(new).decode("utf-8", errors="replace")
    assert text == cut_at_stop(full, until)
  with pytest.raises(ValueError, match="unsupported gen_kwargs \\['num_beams'\\]"):
    lm.generate_until([req("generate_until", "A", {"until": ["."], "num_beams": 2})])


def test_scoring_batches_and_windows_agree(lm):
  rng = np.random.default_rng(0)
  seqs = [rng.integers(0, 256, n).tolist() for n in (2, 5, 40, 17, 33)]
  a = token_logprobs(lm.pre.model, lm.pre.params, seqs, batch_size=3, window=16)
  b = token_logprobs(lm.pre.model, lm.pre.params, seqs, batch_size=5, window=64)
  assert len(seqs[2]) - 1 > 16  # a: several windows of 16, the state carried; b: one window
  for s, x, y in zip(seqs, a, b):
    assert x.logprobs.shape == (len(s) - 1,)
    np.testing.assert_allclose(x.logprobs, y.logprobs, rtol=1e-4, atol=1e-5)
  assert [bucket_length(n, 16) for n in (1, 16, 17, 40)] == [16, 16, 32, 48]
  with pytest.raises(ValueError, match="fewer than 2 tokens"):
    token_logprobs(lm.pre.model, lm.pre.params, [[1]])
  with pytest.raises(ValueError, match="vocab_size=257"):
    token_logprobs(lm.pre.model, lm.pre.params, [[1, 300]])


def test_harness_cli_on_local_tasks(hf_dir, lm, tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(TASKS)  # the YAMLs name tiny.jsonl relative to their directory
  main([f"--pretrained={hf_dir}", "--model_args=tokenizer=byte,window=16",
        "--tasks=tiny_choice,tiny_rolling,tiny_gen", "--include_path=.", "--batch_size=3",
        "--limit=3", f"--output_path={tmp_path}"])  # lm's batch and window: compiled once
  printed = capsys.readouterr().out
  assert "tiny_choice" in printed and "acc" in printed and "bits_per_byte" in printed
  (written,) = tmp_path.rglob("results_*.json")
  results = json.loads(written.read_text())["results"]
  docs = [json.loads(line) for line in (TASKS / "tiny.jsonl").read_text().splitlines()][:3]
  right = []
  for d in docs:  # acc recomputed from the adapter's own log-likelihoods
    lls = [lp for lp, _ in lm.loglikelihood([req("loglikelihood", d["question"], c)
                                             for c in d["choices"]])]
    right.append(int(np.argmax(lls)) == d["label"])
  assert results["tiny_choice"]["acc,none"] == pytest.approx(np.mean(right))
  rolling = lm.loglikelihood_rolling([req("loglikelihood_rolling", d["text"]) for d in docs])
  bits = -sum(rolling) / np.log(2) / sum(len(d["text"].encode()) for d in docs)
  assert results["tiny_rolling"]["bits_per_byte,none"] == pytest.approx(bits, rel=1e-5)
  assert 0.0 <= results["tiny_gen"]["exact_match,none"] <= 1.0


def test_cli_arguments_and_errors(hf_dir):
  assert harness_argv(["--pretrained=D", "--tasks=x", "--model_args", "window=8"]) == [
      "run", "--model", "xlstm_jax", "--model_args", "pretrained=D,window=8", "--tasks=x",
      "--output_path=lm_eval_results"]
  with pytest.raises(SystemExit, match="give --pretrained"):
    harness_argv(["--tasks=x"])
  with pytest.raises(SystemExit, match="--model='hf'"):
    harness_argv(["--pretrained=D", "--model=hf"])
  with pytest.raises(ValueError, match="came without a tokenizer"):
    XLSTMHarnessModel(pretrained=str(hf_dir))
  with pytest.raises(ValueError, match="unknown xlstm_jax model_args \\['dtype'\\]"):
    XLSTMHarnessModel(pretrained=str(hf_dir), tokenizer="byte", dtype="bf16")
