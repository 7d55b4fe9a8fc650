#!/usr/bin/env bash
# Builds and runs the kernel timing tool (native/bench/kernel_bench.cc) against the engine library of a
# cmake-js build folder. Usage: scripts/kernel-bench.sh [build-dir] [--quick] [--threads N] [--only bw|gemm|gemv|bwd|attn]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
lib="$build/libvreflect_engine.a"
[ -f "$lib" ] || { echo "kernel-bench: $lib not found; run: npx cmake-js compile -O $build" >&2; exit 1; }
libs=(-fopenmp)
if grep -q "VREFLECT_HAVE_DNNL" "$build/build.ninja" 2>/dev/null; then libs+=(-DVREFLECT_HAVE_DNNL=1 -ldnnl); fi
g++ -O2 -std=c++17 -I"$root/native" "$root/native/bench/kernel_bench.cc" "$lib" "${libs[@]}" -o "$build/kernel_bench"
exec "$build/kernel_bench" "$@"
