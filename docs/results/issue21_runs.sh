#!/usr/bin/env bash
# Issue 21: the paper's formal-language runs with NX-AI's official setup, and MQAR for Llama,
# on the shared CPU machine, one run at a time, resumable.
#
#   nohup nice -n 10 bash docs/results/issue21_runs.sh > /work/runs/science/chain.log 2>&1 &
#
# Every run lives in $RUNS/<name>; train.py resumes from its newest checkpoint, and a run
# whose eval.json exists is skipped (one that stopped early is only evaluated), so killing and restarting the script continues the
# chain where it stopped. Each run appends "name start end steps machine" to $RUNS/runs.tsv.
#
# Budgets (the full official runs are 20,000 steps of batch 256, hours per model on a CPU):
#  * sLSTM parity stops early once 5 consecutive validations (every 200 steps, 1024
#    in-distribution strings of length 3..40) are at accuracy 1.0; the schedule still spans
#    20,000 steps (stop_at_step / early stop do not change it), so clearing the stop resumes
#    the very same official run.
#  * the other parity models pause at STOP (default 3000 steps) of the same schedule.
#  * parity_slstm_official_short: the same model and optimizer on strings of 3..12 only
#    (batch 64, 200 warmup steps, 3000 steps), a check that the sLSTM learns parity at all.
#  * Llama MQAR (context 64, 8 pairs): the plain RoPE Transformer (conv=0) beside the one
#    with the short conv before q and k (configs/mqar.py's default; see issue21.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-/work/runs/science}
STOP=${STOP:-3000}
mkdir -p "$RUNS"
cd "$ROOT"

run() {  # name, config, extra train.py flags...
  local name=$1 config=$2; shift 2
  local dir=$RUNS/$name
  if [[ -f $dir/eval.json ]]; then echo "skip $name (eval.json exists)"; return; fi
  local start; start=$(date -u +%FT%TZ)
  # an early-stopped run is finished: resuming it would restart the early-stop count
  if ! grep -qs '"early_stop"' "$dir/metrics.jsonl"; then
    python train.py --config="$config" --workdir="$dir" "$@"
  fi
  python eval.py --workdir="$dir" --plot > "$dir/eval.txt"
  local steps; steps=$(python -c "import json,sys; print(json.load(open('$dir/eval.json'))['step'])")
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$start" "$(date -u +%FT%TZ)" "$steps" \
    "$(uname -n) $(nproc) cores (shared, nice 10)" >> "$RUNS/runs.tsv"
  cat "$dir/eval.txt"
}

F=configs/formal.py
EARLY=(--config.early_stop_accuracy=1.0 --config.early_stop_evals=5)
run parity_slstm_official "$F:task=parity,model=slstm,setup=official" "${EARLY[@]}"
run parity_slstm_official_short "$F:task=parity,model=slstm,setup=official" \
  --config.data.train_lengths="(3,12)" --config.data.val_lengths="(3,12)" --config.seq_len=16 \
  --config.batch_size=64 --config.num_steps=3000 --config.optimizer.warmup_steps=200
# Llama MQAR: lr 1e-3 (the default) stayed at 0.16 for 18.5k steps without the conv; lr 1e-2
# and 3e-3 too for 3000 steps (warmup 300). With the conv (the default) it solves it.
run mqar_llama_conv0_lr1e-2 "configs/mqar.py:model=llama,conv=0" --config.num_steps=3000 \
  --config.optimizer.learning_rate=1e-2 --config.optimizer.warmup_steps=300
run mqar_llama_conv4 "configs/mqar.py:model=llama" --config.num_steps=3000
run parity_mlstm_official "$F:task=parity,model=mlstm,setup=official" --config.stop_at_step="$STOP"
run parity_xlstm11_official "$F:task=parity,model=xlstm11,setup=official" --config.stop_at_step="$STOP"
run parity_llama_official "$F:task=parity,model=llama,setup=official" --config.stop_at_step="$STOP"
run parity_lstm_official "$F:task=parity,model=lstm,setup=official" --config.stop_at_step="$STOP"
run modarith_slstm_official "$F:task=modular_arithmetic,model=slstm,setup=official" "${EARLY[@]}"
