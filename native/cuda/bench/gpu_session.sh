#!/usr/bin/env bash
# The CUDA checks of one GPU session on a machine WITHOUT Node.js (the lent H100/H200 machines): builds the CUDA
# test and benchmark binaries with plain cmake (no cmake-js; the addon target is not built), then runs
#   1. the CUDA kernel tests on the GPU (every kernel vs the CPU backend; GEMM: scalar, tensor-core, cuBLASLt),
#   2. compute-sanitizer memcheck and racecheck over them,
#   3. vreflect_cuda_bench and scripts_bench/torch_kernels.py (same JSON schema),
#   4. the model bench vreflect_cuda_model_bench (native/cuda/bench/model/README.md) at the 7B shape: inference at
#      full depth (305-token prompt: prefill, 128 greedy decode tokens, a latent run; then a 16k-image-token
#      prefill) beside scripts_bench/torch_infer.py --synthetic on the same checkpoint and prompt, stage-1 training
#      at 4 decoder layers (gpu optimizer states) without and with recomputation (--checkpointing off / on: MFU with
#      and without the extra forward) beside scripts_bench/torch_train.py on the same checkpoint and
#      micro-batch (the PyTorch runs when transformers imports), stage 2 at 4 layers (random BCM teacher), and stage 1
#      at full depth with host optimizer states (--checkpointing auto: what the plan picks; recomputing if that fails); a summary line per figure against issue 6's targets (decode >= 150 tok/s, MFU >= 40%).
# Everything lands in $OUT (default ./gpu-out), packed at exit into one gpu-session-<time>.tgz (the device tool
# returns at most 8 files; PACK=0 keeps them loose). Run from the repository root:
#   bash native/cuda/bench/gpu_session.sh                 # quick benchmark shapes
#   BENCH_ARGS= bash native/cuda/bench/gpu_session.sh     # the full shape list (minutes)
#   MODEL_ONLY=1 bash native/cuda/bench/gpu_session.sh    # build + the model bench only
# Model bench env (device time: ~1 min to write the 16.6 GB checkpoint, ~5-8 min of runs; see its README):
#   MODEL_BENCH (1; 0 skips it), CKPT_ROOT (checkpoints, default $BUILD/model-bench-ckpt), INFER_LAYERS (28; 0 skips),
#   INFER_ARGS, LONG_IMAGE_TOKENS (16384; 0 skips the long prefill), TRAIN_LAYERS (4; 0 skips), TRAIN_ARGS,
#   TRAIN_STAGE2 (1: stage 2 at TRAIN_LAYERS too; 0 skips),
#   TRAIN_FULL_HOST (1: full-depth training with host optimizer states; 0 skips), FULL_TRAIN_ARGS, TORCH (auto|off),
#   MODEL_TIMEOUT (seconds per model command, 600).
# A device call runs at most 10 minutes: split a session, e.g. (OUT=$OUT each time; checkpoints and build are kept)
#   MODEL_BENCH=0 KERNEL_STEPS="tests bench" bash native/cuda/bench/gpu_session.sh        # build + tests + bench
#   MODEL_BENCH=0 KERNEL_STEPS=sanitize bash native/cuda/bench/gpu_session.sh             # compute-sanitizer
#   MODEL_ONLY=1 TRAIN_LAYERS=0 TRAIN_FULL_HOST=0 bash native/cuda/bench/gpu_session.sh   # 7B inference
#   MODEL_ONLY=1 INFER_LAYERS=0 TRAIN_FULL_HOST=0 bash native/cuda/bench/gpu_session.sh   # 4-layer stage 1 + 2
#   MODEL_ONLY=1 INFER_LAYERS=0 TRAIN_LAYERS=0 bash native/cuda/bench/gpu_session.sh      # full-depth stage 1, host
# Env: OUT, BUILD (build dir, default build-gpu), ARCHS (CMAKE_CUDA_ARCHITECTURES, default 90a: the arch-specific
#      target that compiles the wgmma kernels in; plain 90 leaves it a stub),
#      TESTS (test filters for the sanitizers, space-separated, default "gemm gemv attention_tc attention_decode
#      wgmma"), BENCH_ARGS
#      (default --quick), KERNEL_STEPS (which kernel steps run: "tests sanitize bench", any subset),
#      SANITIZER_TIMEOUT (seconds per sanitizer run, 120). Attention is timed on the path the dispatch picks (tensor
#      cores on sm_80+, impl "vreflect-tc"), then once more with VREFLECT_ATTENTION=scalar for comparison
#      (bench_vreflect_scalar.json), then every tensor-core tile variant at TILE_SEQS (default 8k; ATTN_TILES: all or
#      a list, including the wgmma kernels' "wgmma:<variant>") into bench_tiles.json with the best per case printed
#      (tile_summary.py). The wgmma probe test (cuda_wgmma_probe_gemm: our reading of wgmma's layouts against the
#      hardware) and the wgmma self-check's verdict are printed after the tests: look at them first.
set -u
OUT=${OUT:-./gpu-out}
BUILD=${BUILD:-build-gpu}
ARCHS=${ARCHS:-90a}
TESTS=${TESTS:-gemm gemv attention_tc attention_decode wgmma}
BENCH_ARGS=${BENCH_ARGS---quick}
KERNEL_STEPS=${KERNEL_STEPS:-tests sanitize bench}
SANITIZER_TIMEOUT=${SANITIZER_TIMEOUT:-120}
PACK=${PACK:-1}
mkdir -p "$OUT"

# The device tool brings back at most 8 files from $OUT (device README, "Limits"), and one call of this script
# writes 10-40. So at exit - also when a step fails or a timeout's SIGTERM ends the script - everything under $OUT
# is packed into one archive, gpu-session-<UTC time>.tgz, and the loose files removed (PACK=0 keeps them loose).
# Read it here with: tar xzf gpu-session-*.tgz -C some-dir
pack_out() {
  [ "$PACK" = 1 ] || return 0
  local name
  name="gpu-session-$(date -u +%Y%m%dT%H%M%S).tgz"
  (cd "$OUT" && tar czf "/tmp/$name" --exclude='gpu-session-*.tgz' . && find . -type f ! -name 'gpu-session-*.tgz' -delete \
    && find . -mindepth 1 -type d -empty -delete && mv "/tmp/$name" "$name" && echo "results packed: \$OUT/$name ($(du -h "$name" | cut -f1))")
}
trap pack_out EXIT
trap 'exit 143' TERM INT

step() { echo "== $*"; }

step "device"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; head -15 "$OUT/nvidia-smi.txt"
nvcc --version | tail -2

step "build (cmake, archs $ARCHS)"
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DVREFLECT_CUDA=ON \
    > "$OUT/cmake.log" 2>&1; then
  tail -30 "$OUT/cmake.log"; exit 1
fi
if ! cmake --build "$BUILD" -j"$(nproc)" --target vreflect_cuda_gpu_tests vreflect_cuda_bench vreflect_cuda_model_bench > "$OUT/build.log" 2>&1; then
  grep -E 'error|Error' "$OUT/build.log" | head -30; exit 1
fi

MODEL_ONLY=${MODEL_ONLY:-0}
if [ "$MODEL_ONLY" != 1 ]; then
has_step() { case " $KERNEL_STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if has_step tests; then
step "GPU kernel tests"
"$BUILD/vreflect_cuda_gpu_tests" > "$OUT/gpu_tests.txt" 2>&1
echo "rc=$?"; grep -E '^(FAIL|note)' "$OUT/gpu_tests.txt" | head -40; tail -1 "$OUT/gpu_tests.txt"
# The Hopper wgmma layouts (descriptor, fragments, transpose) as the hardware reads them, and the run-time self-check.
echo "wgmma probe: $(grep -cE '^PASS +wgmma m64n' "$OUT/gpu_tests.txt") cases pass, $(grep -cE '^FAIL +wgmma m64n' "$OUT/gpu_tests.txt") fail$(grep -q 'skipped: this device / build has no sm_90a' "$OUT/gpu_tests.txt" && echo ' (SKIPPED: no sm_90a code for this GPU)')"
grep -E 'wgmma self-check' "$OUT/gpu_tests.txt" | head -3
fi

if has_step sanitize; then
step "compute-sanitizer ($TESTS; at most ${SANITIZER_TIMEOUT}s per run)"
# Each run is bounded: racecheck instruments every shared-memory access (100x and slower), and one slow test must
# not eat the 10-minute device call. rc 124 = cut off by the bound (the report so far is in the file).
for t in $TESTS; do
  for tool in memcheck racecheck; do
    timeout "$SANITIZER_TIMEOUT" compute-sanitizer --tool "$tool" "$BUILD/vreflect_cuda_gpu_tests" "$t" \
      > "$OUT/sanitizer_${tool}_$t.txt" 2>&1
    echo "$t $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_${tool}_$t.txt" | tail -1)"
    # Seen on the gVisor H200 machines (device README, KINDS.md): the sanitizer refuses the device. Every further
    # run would say the same; the Firecracker H100 machines run it.
    if grep -q 'Device not supported' "$OUT/sanitizer_${tool}_$t.txt"; then
      echo "compute-sanitizer: 'Device not supported' on this machine: sanitizer runs skipped (run them on an H100 machine)"
      break 2
    fi
  done
done
fi

if has_step bench; then
step "benchmarks ($BENCH_ARGS)"
# shellcheck disable=SC2086
"$BUILD/vreflect_cuda_bench" --json $BENCH_ARGS > "$OUT/bench_vreflect.json" 2> "$OUT/bench_vreflect.err"
echo "vreflect_cuda_bench rc=$?"
# shellcheck disable=SC2086
VREFLECT_ATTENTION=scalar "$BUILD/vreflect_cuda_bench" --json $BENCH_ARGS --kernels attention_fwd,attention_bwd \
  > "$OUT/bench_vreflect_scalar.json" 2> "$OUT/bench_vreflect_scalar.err"
echo "vreflect_cuda_bench (scalar attention) rc=$?"
# shellcheck disable=SC2086
python3 scripts_bench/torch_kernels.py --json $BENCH_ARGS > "$OUT/bench_torch.json" 2> "$OUT/bench_torch.err"
echo "torch_kernels.py rc=$?"
python3 native/cuda/bench/side_by_side.py "$OUT/bench_vreflect.json" "$OUT/bench_vreflect_scalar.json" "$OUT/bench_torch.json"

step "attention tile variants (tensor cores, head dim 128, seq ${TILE_SEQS:-8k}: ${ATTN_TILES:-all})"
# Every forward / backward tile shape of attention_tc.cu timed on the same cases, then the best per case
# (tile_summary.py); the defaults stay 64x64w4 until these figures say otherwise (kernels README).
"$BUILD/vreflect_cuda_bench" --json --kernels attention_fwd,attention_bwd --seqs "${TILE_SEQS:-8k}" \
  --attention-tiles "${ATTN_TILES:-all}" --reps 5 > "$OUT/bench_tiles.json" 2> "$OUT/bench_tiles.err"
echo "vreflect_cuda_bench (tile variants) rc=$?"; tail -2 "$OUT/bench_tiles.err"
python3 native/cuda/bench/tile_summary.py "$OUT/bench_tiles.json"
# (The ptxas register / spill table, attention_tc_registers.sh, is made off the GPU: same nvcc 13.0, no device time.)

step "memory-bound kernels: 16-byte paths vs scalar (GB/s; kernels README, '16-byte paths')"
# Each case as vreflect-vec16 and vreflect-scalar (VREFLECT_ELEMENTWISE per case), then PyTorch's ops on the same
# shapes; the summary prints GB/s side by side. VREFLECT_ELEMENTWISE=scalar is the fallback if vec16 faults or loses.
# shellcheck disable=SC2086
"$BUILD/vreflect_cuda_bench" --json --kernels elementwise $BENCH_ARGS > "$OUT/bench_elementwise.json" 2> "$OUT/bench_elementwise.err"
echo "vreflect_cuda_bench (elementwise) rc=$?"; tail -2 "$OUT/bench_elementwise.err"
# shellcheck disable=SC2086
python3 scripts_bench/torch_kernels.py --json --kernels elementwise $BENCH_ARGS > "$OUT/bench_elementwise_torch.json" 2> "$OUT/bench_elementwise_torch.err"
echo "torch_kernels.py (elementwise) rc=$?"
python3 native/cuda/bench/side_by_side.py "$OUT/bench_elementwise.json" "$OUT/bench_elementwise_torch.json"
fi  # bench
fi  # MODEL_ONLY

# ---- model bench: the 7B-shaped infer / train figures (issue 6 targets) ----
MODEL_BENCH=${MODEL_BENCH:-1}
CKPT_ROOT=${CKPT_ROOT:-$BUILD/model-bench-ckpt}  # inside the ignored build folder: kept between device calls
INFER_LAYERS=${INFER_LAYERS:-28}
INFER_ARGS=${INFER_ARGS:---image-tokens 256 --prompt-tokens 49 --new-tokens 128 --latent-steps 8 --repeats 3}
LONG_IMAGE_TOKENS=${LONG_IMAGE_TOKENS:-16384}
TRAIN_LAYERS=${TRAIN_LAYERS:-4}
TRAIN_ARGS=${TRAIN_ARGS:---tokens 4096 --train-image-tokens 576 --grad-accum 4 --steps 3}
TRAIN_STAGE2=${TRAIN_STAGE2:-1}
TRAIN_FULL_HOST=${TRAIN_FULL_HOST:-1}
FULL_TRAIN_ARGS=${FULL_TRAIN_ARGS:---tokens 4096 --train-image-tokens 576 --grad-accum 4 --steps 2}
TORCH=${TORCH:-auto}
MODEL_TIMEOUT=${MODEL_TIMEOUT:-600}
MB="$BUILD/vreflect_cuda_model_bench"
# One model-bench command: JSON to $OUT/$1.json, progress to $OUT/$1.err (its last lines echoed).
model_run() {
  local name=$1; shift
  timeout "$MODEL_TIMEOUT" "$MB" "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
  echo "$name rc=$? ($(date -u +%H:%M:%S))"; tail -3 "$OUT/$name.err"
}
if [ "$MODEL_BENCH" = 1 ]; then
  mkdir -p "$CKPT_ROOT"; free -g | head -2; df -h "$CKPT_ROOT" | tail -1
fi
if [ "$MODEL_BENCH" = 1 ] && [ "$INFER_LAYERS" -gt 0 ]; then
  step "model bench: 7B inference ($INFER_LAYERS layers)"
  # shellcheck disable=SC2086
  model_run model_infer infer --shape 7b --layers "$INFER_LAYERS" --full-checkpoint --checkpoint-dir "$CKPT_ROOT/7b-full" $INFER_ARGS
  if [ "$LONG_IMAGE_TOKENS" -gt 0 ]; then
    model_run model_infer_long infer --shape 7b --layers "$INFER_LAYERS" --full-checkpoint --checkpoint-dir "$CKPT_ROOT/7b-full" \
      --image-tokens "$LONG_IMAGE_TOKENS" --prompt-tokens 49 --new-tokens 32 --latent-steps 0 --repeats 1 --warmup 0
  fi
  # PyTorch on the same checkpoint and prompt (scripts_bench/torch_infer.py --synthetic: no processor files needed);
  # its config.json is the full depth's, so only when the bench ran at full depth.
  if [ "$TORCH" != off ] && [ "$INFER_LAYERS" = 28 ] && python3 -c "import transformers" 2>/dev/null; then
    NT=$(echo "$INFER_ARGS" | sed -n 's/.*--new-tokens \([0-9]*\).*/\1/p')
    IT=$(echo "$INFER_ARGS" | sed -n 's/.*--image-tokens \([0-9]*\).*/\1/p')
    PT=$(echo "$INFER_ARGS" | sed -n 's/.*--prompt-tokens \([0-9]*\).*/\1/p')
    timeout "$MODEL_TIMEOUT" python3 scripts_bench/torch_infer.py infer --model "$CKPT_ROOT/7b-full" --device cuda \
      --synthetic "${IT:-256},${PT:-49}" --new-tokens "${NT:-128}" --repeats 3 > "$OUT/torch_infer.json" 2> "$OUT/torch_infer.err"
    echo "torch_infer.py rc=$?"; tail -2 "$OUT/torch_infer.err"
    if [ "$LONG_IMAGE_TOKENS" -gt 0 ]; then
      timeout $((MODEL_TIMEOUT / 2)) python3 scripts_bench/torch_infer.py infer --model "$CKPT_ROOT/7b-full" --device cuda \
        --synthetic "$LONG_IMAGE_TOKENS,49" --new-tokens 32 --repeats 1 --warmup 0 \
        > "$OUT/torch_infer_long.json" 2> "$OUT/torch_infer_long.err"
      echo "torch_infer.py (long) rc=$?"; tail -2 "$OUT/torch_infer_long.err"
    fi
  else
    echo "torch_infer.py skipped: transformers does not import here, TORCH=off, or INFER_LAYERS is not 28" | tee "$OUT/torch_infer.skipped"
  fi
fi
if [ "$MODEL_BENCH" = 1 ]; then
  if [ "$TRAIN_LAYERS" -gt 0 ]; then
    step "model bench: 7B stage-1 training ($TRAIN_LAYERS layers, gpu optimizer states, no recomputation)"
    # Its own checkpoint (config.json of the cut depth), so transformers loads the same model.
    # shellcheck disable=SC2086
    model_run model_train train --shape 7b --layers "$TRAIN_LAYERS" --checkpoint-dir "$CKPT_ROOT/7b-l$TRAIN_LAYERS" \
      --optimizer-states gpu --checkpointing off --torch-batch "$OUT/torch_batch" $TRAIN_ARGS
    step "model bench: 7B stage-1 training ($TRAIN_LAYERS layers, gpu optimizer states, each layer recomputed)"
    # shellcheck disable=SC2086
    model_run model_train_recompute train --shape 7b --layers "$TRAIN_LAYERS" --checkpoint-dir "$CKPT_ROOT/7b-l$TRAIN_LAYERS" \
      --optimizer-states gpu --checkpointing on $TRAIN_ARGS
    if [ "$TORCH" != off ] && python3 -c "import transformers" 2>/dev/null; then
      GA=$(echo "$TRAIN_ARGS" | sed -n 's/.*--grad-accum \([0-9]*\).*/\1/p')
      timeout "$MODEL_TIMEOUT" python3 scripts_bench/torch_train.py --model "$CKPT_ROOT/7b-l$TRAIN_LAYERS" \
        --batch "$OUT/torch_batch/batch.json" --device cuda --steps 3 --warmup 1 --grad-accum "${GA:-1}" --checkpointing \
        > "$OUT/torch_train.json" 2> "$OUT/torch_train.err"
      echo "torch_train.py rc=$?"; tail -2 "$OUT/torch_train.err"
    else
      echo "torch_train.py skipped: transformers does not import here (or TORCH=off)" | tee "$OUT/torch_train.skipped"
    fi
  fi
  if [ "$TRAIN_LAYERS" -gt 0 ] && [ "$TRAIN_STAGE2" = 1 ]; then
    step "model bench: 7B stage-2 training ($TRAIN_LAYERS layers, random BCM teacher, gpu optimizer states)"
    # shellcheck disable=SC2086
    model_run model_train_s2 train --shape 7b --layers "$TRAIN_LAYERS" --checkpoint-dir "$CKPT_ROOT/7b-l$TRAIN_LAYERS" \
      --optimizer-states gpu --stage 2 $TRAIN_ARGS
  fi
  if [ "$TRAIN_FULL_HOST" = 1 ]; then
    step "model bench: 7B stage-1 training (full depth, host optimizer states)"
    # shellcheck disable=SC2086
    model_run model_train_full train --shape 7b --full-checkpoint --checkpoint-dir "$CKPT_ROOT/7b-full" \
      --optimizer-states host $FULL_TRAIN_ARGS
    # --checkpointing auto keeps every layer's activations when the plan says they fit (66 GiB at 4096 tokens): if
    # that run failed (out of memory: the plan's margins are estimates), measure it again recomputing each layer.
    if ! python3 -c 'import json,sys; t=json.load(open(sys.argv[1])).get("train") or {}; sys.exit(0 if t and "error" not in t else 1)' \
        "$OUT/model_train_full.json" 2>/dev/null; then
      echo "model_train_full failed: again with --checkpointing on"
      # shellcheck disable=SC2086
      model_run model_train_full_recompute train --shape 7b --full-checkpoint --checkpoint-dir "$CKPT_ROOT/7b-full" \
        --optimizer-states host --checkpointing on $FULL_TRAIN_ARGS
    fi
  fi
  step "model bench summary (targets: issue 6)"
  python3 native/cuda/bench/model/summary.py "$OUT"
fi
