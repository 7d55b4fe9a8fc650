#!/usr/bin/env bash
# Reproduces upstream's scripts_release/evaluation/evaluation_7b_stage2.sh with vreflect: the six benchmarks,
# latent quotas 4,8,16,32, upstream's image limits (HR-Bench max_pixels 12845056), then both scores.
#   EVAL_CHECKPOINT_PATH   the V-Reflection checkpoint directory (required)
#   EVAL_DATA_ROOT         benchmark folders as huggingface-cli leaves them (default: data)
#   EVAL_OUTPUT_DIR        results root (default: results)
#   EVAL_STEP_LIST         default 4,8,16,32
#   EVAL_BENCHMARKS        default all six
#   EVAL_SHARDS            number of processes/GPUs (default 1); each runs --shard i/n, the last merges
#   EVAL_DEVICE            cpu | cuda | auto (default auto)
set -euo pipefail
: "${EVAL_CHECKPOINT_PATH:=${CHECKPOINT_PATH:-}}"
if [ -z "$EVAL_CHECKPOINT_PATH" ]; then
  echo "set EVAL_CHECKPOINT_PATH to the checkpoint directory" >&2
  exit 2
fi
DATA_ROOT=${EVAL_DATA_ROOT:-data}
OUT=${EVAL_OUTPUT_DIR:-results}
STEPS=${EVAL_STEP_LIST:-4,8,16,32}
BENCHES=${EVAL_BENCHMARKS:-BLINK,MMVP,VSTAR,HRBench4K,HRBench8K,MME-RealWorld-Lite}
SHARDS=${EVAL_SHARDS:-1}
DEVICE=${EVAL_DEVICE:-auto}
VREFLECT=${VREFLECT:-npx vreflect}

run_shard() {
  $VREFLECT eval --model "$EVAL_CHECKPOINT_PATH" --data-root "$DATA_ROOT" --output-dir "$OUT" \
    --benchmarks "$BENCHES" --steps "$STEPS" --device "$DEVICE" \
    --hrbench4k-max-pixels 12845056 --hrbench8k-max-pixels 12845056 "$@"
}

mkdir -p "$OUT"
if [ "$SHARDS" -le 1 ]; then
  run_shard
else
  for ((i = 0; i < SHARDS; i++)); do
    CUDA_VISIBLE_DEVICES=$i run_shard --shard "$i/$SHARDS" > "$OUT/eval_shard$i.log" 2>&1 &
  done
  wait
fi
$VREFLECT eval score "$OUT"
