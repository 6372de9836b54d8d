"""Training throughput: tokens/s of the full train step (forward, backward, AdamW update).

Every model trains on one fixed random batch of `--batch` x `--seq_len` tokens. After
`--warmup` steps (compiling the step), each of `--repeats` timed runs does `--steps`
steps back to back, threading the donated train state through them, and ends with
`jax.block_until_ready` on the last loss (PyTorch is synchronous on the CPU). tokens/s =
batch * seq_len * steps / wall time; the best of the repeats is reported, the median
beside it. Repeats alternate between the models so that machine noise hits them alike.

CPU comparison (default): one small xLSTM LM (mLSTM blocks, an sLSTM block at
`--slstm_at`) here and in NX-AI's PyTorch `xlstm` (xLSTMLMModel, eager, its own mLSTM
parallel form and its "vanilla" sLSTM, torch.optim.AdamW with the same hyperparameters
and the same weight-decay split), float32, same batch and context. Target: ours >= 4x.

GPU mode (`--gpu`): tokens/s and MFU of paper-size presets at context 2048, bfloat16
compute with float32 parameters; MFU = train_flops_per_token * tokens/s / (datasheet
bfloat16 peak * devices) (xlstm_jax/counting/flops.py). Target: MFU >= 40% for the
350M xLSTM[1:0] with the Pallas kernels (published small-model MFUs of JAX codebases are
35-42%). An out-of-memory model is reported, not fatal.

  python benchmarks/train_throughput.py                        # CPU: ours vs torch xlstm
  python benchmarks/train_throughput.py --backend parallel --steps 20
  python benchmarks/train_throughput.py --gpu                  # 125m/350m, xLSTM[1:0] + Llama
  python benchmarks/train_throughput.py --gpu --models xlstm10_350m:8,llama_350m:8 --remat
  python benchmarks/train_throughput.py --gpu --models xlstm10_tiny,llama_tiny \\
      --seq_len 128 --batch 4 --backend chunkwise              # CPU smoke test of GPU mode
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import statistics
import time

from xlstm_jax.cpu_setup import prepare_process
from xlstm_jax.hugepages import describe

if __name__ == "__main__":
  prepare_process()   # both sides: huge-page malloc, XLA:CPU flags (xlstm_jax/cpu_setup.py)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from xlstm_jax import presets, sharding  # noqa: E402
from xlstm_jax.convert.torch_xlstm import config_from_torch_xlstm  # noqa: E402
from xlstm_jax.nn import LanguageModel  # noqa: E402
from xlstm_jax.counting import count_params, peak_flops, train_flops_per_token  # noqa: E402
from xlstm_jax.counting.count import model_flops  # noqa: E402
from xlstm_jax.training.optimizer import OptimizerConfig, make_optimizer  # noqa: E402
from xlstm_jax.training.step import batch_sharding, init_train_state, make_train_step  # noqa: E402
from timing import best_ms  # noqa: E402

# AdamW hyperparameters shared by both sides (constant learning rate: no warmup, so the
# torch side needs no scheduler; a schedule costs nothing measurable either way).
OPT = dict(learning_rate=1e-3, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=1.0)
GPU_MODELS = "xlstm10_125m,xlstm10_350m,llama_125m,llama_350m"
MFU_TARGET = 0.40  # issue 17: the 350M xLSTM[1:0] at context 2048


def random_tokens(batch: int, seq_len: int, vocab: int) -> np.ndarray:
  """[batch, seq_len + 1] int32: inputs are [:, :-1], targets [:, 1:]."""
  return np.random.default_rng(0).integers(0, vocab, (batch, seq_len + 1), dtype=np.int32)


def jax_runner(cfg, tokens_BT1: np.ndarray):
  """run(n) does n train steps of `cfg` on the batch and returns the last loss (synced)."""
  mesh = sharding.make_mesh(-1, 1, 1)
  sharding.check_batch_divisible(tokens_BT1.shape[0], mesh)
  model = LanguageModel(cfg)
  tx = make_optimizer(OptimizerConfig(warmup_steps=0, num_steps=10**6, final_lr_ratio=1.0,
                                      **OPT))
  state, shardings = init_train_state(model, tx, jax.random.key(0), mesh,
                                      tokens_BT1.shape[1] - 1)
  step = make_train_step(model, tx, mesh, shardings)
  batch = {"inputs": jax.device_put(tokens_BT1[:, :-1], batch_sharding(mesh)),
           "targets": jax.device_put(tokens_BT1[:, 1:], batch_sharding(mesh))}

  def run(n: int) -> float:
    nonlocal state  # the step donates its input state: only the returned one is alive
    for _ in range(n):
      state, metrics = step(state, batch)
    return float(jax.block_until_ready(metrics["loss"]))

  return run


def torch_runner(args, tokens_BT1: np.ndarray):
  """NX-AI's xLSTMLMModel: dict(run, params, threads, config), or None if not installed."""
  try:
    import torch  # noqa: PLC0415 (optional peer)
    import xlstm  # noqa: PLC0415
  except ImportError as e:
    print(f"peer not measured: PyTorch xlstm is not importable ({e})")
    return None
  if args.torch_threads:
    torch.set_num_threads(args.torch_threads)
  torch.manual_seed(0)
  cfg = xlstm.xLSTMLMModelConfig(
      vocab_size=args.vocab, embedding_dim=args.embedding_dim, num_blocks=args.blocks,
      slstm_at=slstm_at(args), context_length=args.seq_len, tie_weights=False,
      add_post_blocks_norm=True, bias=False, dropout=0.0,
      mlstm_block=xlstm.mLSTMBlockConfig(mlstm=xlstm.mLSTMLayerConfig(
          conv1d_kernel_size=4, qkv_proj_blocksize=4, num_heads=args.heads, proj_factor=2.0)),
      slstm_block=xlstm.sLSTMBlockConfig(
          slstm=xlstm.sLSTMLayerConfig(backend="vanilla", num_heads=args.heads,
                                       conv1d_kernel_size=4,
                                       bias_init="powerlaw_blockdependent"),
          feedforward=xlstm.FeedForwardConfig(proj_factor=1.3, act_fn="gelu")))
  model = xlstm.xLSTMLMModel(cfg)
  model.reset_parameters()
  model.train()
  # Decay matrices only, like xlstm_jax's decay_mask: not the embedding, norms or biases.
  named = list(model.named_parameters())
  decay = [p for n, p in named if p.ndim >= 2 and "token_embedding" not in n]
  rest = [p for n, p in named if not (p.ndim >= 2 and "token_embedding" not in n)]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                           {"params": rest, "weight_decay": 0.0}],
                          lr=OPT["learning_rate"], betas=(OPT["b1"], OPT["b2"]), eps=OPT["eps"])
  tokens = torch.from_numpy(tokens_BT1).long()
  inputs, targets = tokens[:, :-1], tokens[:, 1:]

  def run(n: int) -> float:
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      logits_BTV = model(inputs)
      loss = torch.nn.functional.cross_entropy(logits_BTV.reshape(-1, args.vocab),
                                               targets.reshape(-1))
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["grad_clip"])
      opt.step()
    return loss.item()

  return dict(run=run, params=sum(p.numel() for _, p in named),
              threads=torch.get_num_threads(), version=torch.__version__,
              config=dataclasses.asdict(cfg))


def measure(runners: dict, args) -> dict:
  """{name: dict(best, median tokens/s, first and last loss)}, repeats interleaved."""
  first = {name: run(args.warmup) for name, run in runners.items()}  # compiles
  times = {name: [] for name in runners}
  last = {}
  for _ in range(args.repeats):
    for name, run in runners.items():
      start = time.perf_counter()
      last[name] = run(args.steps)
      times[name].append(time.perf_counter() - start)
  tokens = args.batch * args.seq_len * args.steps
  return {name: dict(best=tokens / min(t), median=tokens / statistics.median(t),
                     step_ms=1e3 * min(t) / args.steps, first_loss=first[name],
                     last_loss=last[name])
          for name, t in times.items()}


def matmul_peak(torch_too: bool, n: int = 2048, repeats: int = 5) -> dict[str, float]:
  """FLOP/s of a dense float32 [n, n] @ [n, n] matmul, best of `repeats`: the CPU's
  practical peak, for jax (XLA:CPU) and, with `torch_too`, for torch."""
  a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
  inputs = {"jax": jnp.asarray(a)}
  if torch_too:
    import torch  # noqa: PLC0415 (optional peer)
    inputs["torch"] = torch.from_numpy(a)
  return {name: 2 * n**3 / (best_ms(lambda x: x @ x, (x,), repeats) / 1e3)
          for name, x in inputs.items()}


def slstm_at(args) -> list[int]:
  return [int(i) for i in args.slstm_at.split(",") if i != ""]


def cpu_comparison(args) -> None:
  cfg = presets.model_config(
      "xlstm_tiny", vocab_size=args.vocab, embedding_dim=args.embedding_dim,
      num_blocks=args.blocks, slstm_at=tuple(slstm_at(args)), num_heads=args.heads,
      slstm_num_heads=args.heads, backend=args.backend or "auto", chunk_size=args.chunk_size)
  print(f"device: {jax.devices()[0].device_kind} ({os.cpu_count()} cores), "
        f"jax {jax.__version__}")
  tokens = random_tokens(args.batch, args.seq_len, args.vocab)
  runners = {"xlstm_jax": jax_runner(cfg, tokens)}
  counts = {"xlstm_jax": count_params(cfg)}
  peer = torch_runner(args, tokens) if not args.no_peer else None
  if peer is not None:
    runners["torch xlstm"], counts["torch xlstm"] = peer["run"], peer["params"]
    print(f"torch {peer['version']}: {peer['threads']} intra-op threads"
          + ("" if args.torch_threads else " (its default)"))
    same = config_from_torch_xlstm(peer["config"], backend=cfg.backend,
                                   chunk_size=cfg.chunk_size) == cfg
    print("torch config, converted, equals ours" if same else
          "WARNING: the torch config, converted (convert.config_from_torch_xlstm), differs")
  print(f"E={args.embedding_dim}, {args.blocks} blocks, sLSTM at {slstm_at(args)}, "
        f"{args.heads} heads, vocab {args.vocab}, batch {args.batch}, context {args.seq_len}, "
        f"float32; ours: backend {cfg.backend}, chunk {cfg.chunk_size or 'default'}")
  for name, n in counts.items():
    print(f"parameters {name:>12}: {n:,}")
  if len(counts) == 2 and len(set(counts.values())) > 1:
    a, b = counts.values()
    print(f"WARNING: parameter counts differ by {a - b:+,} ({(a - b) / b:+.3%})")
  results = measure(runners, args)
  peak = matmul_peak(torch_too=peer is not None)
  practical = max(peak.values())
  # Counted FLOPs (xlstm_jax/counting/count.py) of the computation each side runs: ours in
  # its configured form, torch's mLSTM in the parallel form it implements.
  per_token = {"xlstm_jax": model_flops(cfg, args.seq_len)["total"],
               "torch xlstm": model_flops(cfg.replace(backend="parallel"),
                                          args.seq_len)["total"]}
  print(f"\n{args.warmup} warm-up steps, then best (and median) of {args.repeats} runs of "
        f"{args.steps} steps; huge-page malloc {describe()}; "
        f"XLA_FLAGS {os.environ.get('XLA_FLAGS') or '(none)'}")
  print("dense float32 2048^3 matmul: " + ", ".join(f"{n} {f / 1e9:.0f} GFLOP/s"
                                                   for n, f in peak.items())
        + "; % of peak = counted train-step FLOPs per second / the larger of these\n")
  print(f"{'model':>12} | {'tokens/s':>9} | {'median':>9} | {'ms/step':>8} | {'MFLOP/tok':>9} | "
        f"{'% peak':>6} | loss first -> last")
  for name, r in results.items():
    frac = per_token[name] * r["best"] / practical
    print(f"{name:>12} | {r['best']:9.0f} | {r['median']:9.0f} | {r['step_ms']:8.1f} | "
          f"{per_token[name] / 1e6:9.2f} | {frac:6.1%} | "
          f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}")
  if len(results) == 2:
    ours, peer_r = results["xlstm_jax"], results["torch xlstm"]
    ratio = ours["best"] / peer_r["best"]
    median = ours["median"] / peer_r["median"]
    print(f"\nours / torch tokens/s: {ratio:.2f}x (median {median:.2f}x); "
          f"target >= 4x: {'met' if ratio >= 4 else 'NOT met'}")
  else:
    print("\ntarget ours >= 4x torch: not checked (torch not measured)")


def is_oom(e: Exception) -> bool:
  msg = str(e)
  return "RESOURCE_EXHAUSTED" in msg or "out of memory" in msg.lower()


def gpu_mode(args) -> None:
  device = jax.devices()[0]
  peak = peak_flops(device, "bfloat16")
  print(f"device: {device.device_kind} x {jax.device_count()}, jax {jax.__version__}, "
        f"context {args.seq_len}, bfloat16 compute, float32 params, remat {args.remat}, "
        f"scan_blocks {args.scan_blocks}; {args.warmup} warm-up steps, best (median) of "
        f"{args.repeats} runs of {args.steps} steps")
  print(f"peak: {f'{peak / 1e12:.1f} TFLOP/s bf16 per device' if peak else 'unknown (n/a)'}\n")
  print(f"{'model':>14} | {'params':>7} | {'batch':>5} | {'tokens/s':>9} | {'median':>9} | "
        f"{'ms/step':>8} | {'MFU':>6} | loss first -> last")
  target = {}  # xLSTM[1:0] model -> MFU
  for spec in args.models.split(","):
    name, _, batch = spec.partition(":")
    cfg = presets.model_config(name, dtype="bfloat16", param_dtype="float32", remat=args.remat,
                               scan_blocks=args.scan_blocks)
    if cfg.arch != "llama":
      cfg = cfg.replace(backend=args.backend or "pallas", chunk_size=args.chunk_size)
    run_args = argparse.Namespace(**{**vars(args), "batch": int(batch or args.batch)})
    row = f"{name:>14} | {count_params(cfg) / 1e6:6.1f}M | {run_args.batch:5d} | "
    try:
      tokens = random_tokens(run_args.batch, args.seq_len, cfg.vocab_size)
      r = measure({name: jax_runner(cfg, tokens)}, run_args)[name]
    except Exception as e:  # noqa: BLE001 (only out-of-memory is reported and skipped)
      if not is_oom(e):
        raise
      r = str(e).splitlines()[0][:80]
    if isinstance(r, str):  # outside the except, so the traceback's buffers can be freed
      print(row + f"out of memory ({r})", flush=True)
      gc.collect()
      continue
    flops = train_flops_per_token(cfg, args.seq_len) * r["best"]
    mfu = flops / (peak * jax.device_count()) if peak else None
    if cfg.arch == "xlstm" and not cfg.slstm_at and mfu is not None:
      target[name] = mfu
    print(row + f"{r['best']:9.0f} | {r['median']:9.0f} | {r['step_ms']:8.1f} | "
          f"{f'{mfu:6.1%}' if mfu is not None else 'n/a':>6} | "
          f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}", flush=True)
    gc.collect()  # the runner's state goes with it before the next model
  backend = args.backend or "pallas"
  print(f"\ntarget: MFU >= {MFU_TARGET:.0%} for xLSTM[1:0] with the Pallas kernels: ", end="")
  if backend != "pallas" or not target:
    print(f"not checked (backend {backend}, peak {'known' if peak else 'unknown'}, "
          f"{len(target)} xLSTM[1:0] models measured)")
  else:
    print(", ".join(f"{n} {'met' if m >= MFU_TARGET else 'NOT met'}" for n, m in target.items()))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--gpu", action="store_true",
                 help="GPU mode: paper-size presets, tokens/s and MFU (default: the CPU "
                      "comparison with PyTorch xlstm)")
  p.add_argument("--batch", type=int, default=None,
                 help="sequences per step (default: 8 on the CPU, 16 in GPU mode; in GPU mode "
                      "a model may override it as name:batch in --models)")
  p.add_argument("--seq_len", type=int, default=None,
                 help="context length in tokens (default: 256 on the CPU, 2048 in GPU mode)")
  p.add_argument("--steps", type=int, default=10, help="train steps per timed run (10)")
  p.add_argument("--repeats", type=int, default=3,
                 help="timed runs per model (3); the best is reported, the median beside it")
  p.add_argument("--warmup", type=int, default=2,
                 help="untimed steps before timing (2); the first one compiles")
  p.add_argument("--backend", default=None,
                 choices=["auto", "recurrent", "parallel", "chunkwise", "pallas"],
                 help="our mLSTM form (default: auto on the CPU, i.e. chunkwise there; pallas "
                      "in GPU mode, for the xLSTM presets; pallas on a CPU runs interpreted "
                      "and is very slow)")
  p.add_argument("--chunk_size", type=int, default=None,
                 help="chunk length of our chunkwise / pallas mLSTM (default: the form's, 64 "
                      "for chunkwise and the GPU kernels, 128 for the TPU kernels)")
  cpu = p.add_argument_group("CPU comparison (the same model on both sides)")
  cpu.add_argument("--embedding_dim", type=int, default=128, help="residual width E (128)")
  cpu.add_argument("--blocks", type=int, default=4, help="number of blocks (4)")
  cpu.add_argument("--slstm_at", default="1",
                   help="comma-separated sLSTM block indices (1); \"\" for xLSTM[1:0]")
  cpu.add_argument("--heads", type=int, default=4, help="mLSTM and sLSTM heads (4)")
  cpu.add_argument("--vocab", type=int, default=257, help="vocabulary size (257)")
  cpu.add_argument("--torch_threads", type=int, default=None,
                   help="torch.set_num_threads for the peer (default: left at torch's default)")
  cpu.add_argument("--no_peer", action="store_true",
                   help="time only this codebase, not PyTorch xlstm")
  gpu = p.add_argument_group("GPU mode")
  gpu.add_argument("--models", default=GPU_MODELS,
                   help="comma-separated presets, each optionally name:batch (default: "
                        f"{GPU_MODELS})")
  gpu.add_argument("--remat", action="store_true",
                   help="ModelConfig.remat: recompute each block in the backward pass")
  gpu.add_argument("--scan_blocks", action="store_true",
                   help="ModelConfig.scan_blocks: nn.scan over the identical blocks")
  args = p.parse_args(argv)
  if args.batch is None:
    args.batch = 16 if args.gpu else 8
  if args.seq_len is None:
    args.seq_len = 2048 if args.gpu else 256
  if min(args.steps, args.repeats, args.warmup) < 1:
    p.error("--steps, --repeats and --warmup must be >= 1")
  if args.gpu:
    gpu_mode(args)
  else:
    cpu_comparison(args)


if __name__ == "__main__":
  main()
