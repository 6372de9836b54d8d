"""Generation speed and memory at long context: xLSTM LM vs the Llama baseline with a KV cache.

For each context length the prompt is prefilled (the xLSTM with its chunkwise form, Llama
in chunks through its KV cache), then `--new_tokens` tokens are decoded greedily in one
jitted lax.scan, timed after a warm-up run. Memory is the decode loop's compiled footprint
(arguments + temporaries, from XLA's memory analysis), the same measure on every device.
The xLSTM's per-token time and memory should stay flat across contexts; Llama's grow.

  python benchmarks/decode.py                          # CPU-sized models (E=256)
  python benchmarks/decode.py --size 125m --contexts 1024,8192,32768   # paper sizes (GPU)
"""

from __future__ import annotations

import argparse
import time

from xlstm_jax.cpu_setup import prepare_process

if __name__ == "__main__":
  prepare_process()   # before jax loads: xlstm_jax/cpu_setup.py

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from xlstm_jax import presets  # noqa: E402
from xlstm_jax.nn import LanguageModel, init_params  # noqa: E402
from xlstm_jax.counting import count_params  # noqa: E402


def decode(model, params, token, state, num_tokens: int):
  """Greedy: feeds `token` [B] and then each next token back, `num_tokens` times, in one
  lax.scan from a prefilled `state` (the loop whose per-token time and memory are timed).
  Returns (tokens [B, num_tokens], the final state)."""
  def step(carry, _):
    token, state = carry
    logits, state = model.apply({"params": params}, token[:, None], state=state,
                                return_state=True)
    nxt = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)
    return (nxt, state), nxt

  (_, state), tokens = jax.lax.scan(step, (token, state), None, length=num_tokens)
  return tokens.T, state


def configs(args):
  if args.size:
    return (presets.model_config(f"xlstm10_{args.size}", dtype=args.dtype),
            presets.model_config(f"llama_{args.size}", dtype=args.dtype))
  # Equal-size small pair: an mLSTM block holds about half a Transformer layer's parameters.
  E = args.embedding_dim
  return (presets.model_config("xlstm10_125m", embedding_dim=E, num_blocks=2 * args.layers,
                               vocab_size=args.vocab, dtype=args.dtype),
          presets.model_config("llama_125m", embedding_dim=E, num_blocks=args.layers,
                               num_heads=max(E // 64, 1), vocab_size=args.vocab,
                               dtype=args.dtype))


def prefill(model, params, prompt, max_len, chunk):
  apply = jax.jit(lambda p, t, s: model.apply({"params": p}, t, state=s, return_state=True))
  state = model.init_state(prompt.shape[0], max_len)
  for start in range(0, prompt.shape[1], chunk):
    logits, state = apply(params, prompt[:, start:start + chunk], state)
  return jnp.argmax(logits[:, -1], -1).astype(jnp.int32), state


def prepare(model, params, context, args):
  """Prefills a random prompt of `context` tokens; compiles the decode loop from there."""
  prompt = jax.random.randint(jax.random.key(1), (args.batch, context), 0, model.cfg.vocab_size)
  chunk = context if model.cfg.arch != "llama" else min(context, args.llama_prefill_chunk)
  token, state = prefill(model, params, prompt, context + args.new_tokens + 1, chunk)
  run = jax.jit(lambda p, t, s: decode(model, p, t, s, args.new_tokens)[0])
  compiled = run.lower(params, token, state).compile()
  mem = compiled.memory_analysis()
  footprint = (mem.argument_size_in_bytes + mem.temp_size_in_bytes) if mem else float("nan")
  call = lambda: compiled(params, token, state).block_until_ready()
  call()  # warm-up
  return call, dict(state_mib=sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20,
                    footprint_mib=footprint / 2**20)


def measure(model, params, contexts, args):
  """Per context: best-of-`repeats` decode time, interleaving the contexts so that machine
  noise hits them alike."""
  prepared = {c: prepare(model, params, c, args) for c in contexts}
  best = {c: float("inf") for c in contexts}
  for _ in range(args.repeats):
    for c, (call, _) in prepared.items():
      t0 = time.perf_counter()
      call()
      best[c] = min(best[c], time.perf_counter() - t0)
  return {c: dict(mem, ms_per_token=1e3 * best[c] / args.new_tokens,
                 tokens_per_s=args.batch * args.new_tokens / best[c])
          for c, (_, mem) in prepared.items()}


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--size", choices=["125m", "350m", "760m", "1_3b"], default=None,
                 help="paper-size presets xlstm10_<size> vs llama_<size> (default: the small "
                      "pair below)")
  p.add_argument("--embedding_dim", type=int, default=256, help="small pair: width")
  p.add_argument("--layers", type=int, default=4,
                 help="small pair: Llama layers (the xLSTM gets twice as many blocks)")
  p.add_argument("--vocab", type=int, default=1024, help="small pair: vocabulary")
  p.add_argument("--models", default="xlstm,llama", help="which of xlstm,llama to run")
  p.add_argument("--contexts", default="1024,8192,32768", help="comma-separated prompt lengths")
  p.add_argument("--new_tokens", type=int, default=64, help="tokens decoded per measurement")
  p.add_argument("--batch", type=int, default=1, help="sequences decoded together")
  p.add_argument("--repeats", type=int, default=5, help="timed runs (the best is reported)")
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--llama_prefill_chunk", type=int, default=1024,
                 help="Llama prefills through its cache in chunks of this many tokens")
  args = p.parse_args()
  contexts = [int(c) for c in args.contexts.split(",")]
  print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}, batch {args.batch}, "
        f"{args.new_tokens} new tokens, {args.dtype}")
  results = {}
  for cfg in configs(args):
    if cfg.arch not in args.models.split(","):
      continue
    model = LanguageModel(cfg)
    params = init_params(model, jax.random.key(0))
    name = f"{'xLSTM[1:0]' if cfg.arch == 'xlstm' else 'Llama'} ({count_params(cfg) / 1e6:.1f}M)"
    for context, r in measure(model, params, contexts, args).items():
      results[(name, context)] = r
      print(f"{name:>20} ctx {context:>6}: {r['ms_per_token']:8.2f} ms/token "
            f"{r['tokens_per_s']:9.1f} tok/s  state {r['state_mib']:8.2f} MiB  "
            f"decode footprint {r['footprint_mib']:8.1f} MiB", flush=True)
  print("\nratios (longest / shortest context):")
  for name in dict.fromkeys(n for n, _ in results):
    a, b = results[(name, contexts[0])], results[(name, contexts[-1])]
    print(f"{name:>20}: time x{b['ms_per_token'] / a['ms_per_token']:.2f}, "
          f"footprint x{b['footprint_mib'] / a['footprint_mib']:.2f}")
  names = list(dict.fromkeys(n for n, _ in results))
  for context in contexts if len(names) == 2 else []:
    x, l = results[(names[0], context)], results[(names[1], context)]
    print(f"ctx {context:>6}: xLSTM / Llama time per token "
          f"{x['ms_per_token'] / l['ms_per_token']:.2f}, "
          f"footprint {x['footprint_mib'] / l['footprint_mib']:.2f}")


if __name__ == "__main__":
  main()
