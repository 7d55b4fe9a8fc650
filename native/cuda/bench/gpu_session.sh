#!/usr/bin/env bash
# The CUDA checks of one GPU session on a machine WITHOUT Node.js (the lent H100/H200 machines): builds the CUDA
# test and benchmark binaries with plain cmake (no cmake-js; the addon target is not built), then runs
#   1. the CUDA kernel tests on the GPU (every kernel vs the CPU backend; GEMM: scalar, tensor-core, cuBLASLt),
#   2. compute-sanitizer memcheck and racecheck over them,
#   3. vreflect_cuda_bench and scripts_bench/torch_kernels.py (same JSON schema).
# Everything lands in $OUT (default ./gpu-out). Run from the repository root:
#   bash native/cuda/bench/gpu_session.sh                 # quick benchmark shapes
#   BENCH_ARGS= bash native/cuda/bench/gpu_session.sh     # the full shape list (minutes)
# Env: OUT, BUILD (build dir, default build-gpu), ARCHS (CMAKE_CUDA_ARCHITECTURES, default 90),
#      TESTS (test filters for the sanitizers, space-separated, default "gemm attention_tc"), BENCH_ARGS
#      (default --quick). Attention is timed on the path the dispatch picks (tensor cores on sm_80+, impl
#      "vreflect-tc"), then once more with VREFLECT_ATTENTION=scalar for comparison (bench_vreflect_scalar.json).
set -u
OUT=${OUT:-./gpu-out}
BUILD=${BUILD:-build-gpu}
ARCHS=${ARCHS:-90}
TESTS=${TESTS:-gemm attention_tc attention_decode}
BENCH_ARGS=${BENCH_ARGS---quick}
mkdir -p "$OUT"

step() { echo "== $*"; }

step "device"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1; head -15 "$OUT/nvidia-smi.txt"
nvcc --version | tail -2

step "build (cmake, archs $ARCHS)"
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DVREFLECT_CUDA=ON \
    > "$OUT/cmake.log" 2>&1; then
  tail -30 "$OUT/cmake.log"; exit 1
fi
if ! cmake --build "$BUILD" -j"$(nproc)" --target vreflect_cuda_gpu_tests vreflect_cuda_bench > "$OUT/build.log" 2>&1; then
  grep -E 'error|Error' "$OUT/build.log" | head -30; exit 1
fi

step "GPU kernel tests"
"$BUILD/vreflect_cuda_gpu_tests" > "$OUT/gpu_tests.txt" 2>&1
echo "rc=$?"; grep -E '^(FAIL|note)' "$OUT/gpu_tests.txt" | head -40; tail -1 "$OUT/gpu_tests.txt"

step "compute-sanitizer ($TESTS)"
for t in $TESTS; do
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" "$BUILD/vreflect_cuda_gpu_tests" "$t" > "$OUT/sanitizer_${tool}_$t.txt" 2>&1
    echo "$t $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_${tool}_$t.txt" | tail -1)"
  done
done

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
python3 - "$OUT/bench_vreflect.json" "$OUT/bench_vreflect_scalar.json" "$OUT/bench_torch.json" <<'EOF'
import json, sys
rows = {}
for path in sys.argv[1:]:
    try:
        doc = json.load(open(path))
    except Exception as err:  # noqa: BLE001
        print(f"{path}: {err}")
        continue
    for r in doc["results"]:
        key = (r["kernel"], json.dumps(r["shape"]), r.get("causal"))
        gbs = f" {r['gbs']} GB/s" if r.get("gbs") is not None else ""
        rows.setdefault(key, []).append(f"{r['impl']} {r['tflops']}{gbs}")
for (kernel, shape, causal), impls in rows.items():
    print(f"{kernel:20} {shape:90} {'' if causal is None else causal!s:6} " + " | ".join(impls))
EOF
