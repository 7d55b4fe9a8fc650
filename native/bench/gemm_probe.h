// GEMM throughput probe: times the op layer's linear_forward (the GEMM the engine runs: oneDNN with AMX or
// AVX-512-BF16, or the built-in kernels) on one shape, so the benchmark can state the machine's bf16/fp32
// GEMM peak as our own code reaches it. Header-only so the addon's bench binding needs no extra build entry.
#pragma once
#include <cstdint>
#include <vector>

#include "bench/repeat_timer.h"
#include "core/dtype.h"
#include "core/error.h"
#include "ops/linear.h"

namespace vr::bench {

struct GemmResult {
  double best_ms = 0, median_ms = 0, gflops = 0;
  int repeats = 0;
  const char* backend = "";
};

// out[M,N] = x[M,K] @ W[N,K]^T with random data; one warm-up call (primitive creation, weight packing), then
// at least min_repeats calls and until `seconds` have passed. GFLOP/s from the best call (2*M*N*K FLOP).
inline GemmResult measure_gemm(int64_t M, int64_t N, int64_t K, DType dtype, double seconds, int min_repeats) {
  VR_CHECK(M >= 1 && N >= 1 && K >= 1 && M * K <= (int64_t(1) << 31) && N * K <= (int64_t(1) << 31) && M * N <= (int64_t(1) << 31),
           "gemm probe: M, N, K must be >= 1 and each matrix at most 2^31 elements (got ", M, "x", N, "x", K, ")");
  VR_CHECK(dtype == DType::F32 || dtype == DType::BF16, "gemm probe: dtype must be F32 or BF16");
  VR_CHECK(seconds >= 0 && seconds <= 600, "gemm probe: seconds must be in [0, 600]");
  VR_CHECK(min_repeats >= 1 && min_repeats <= 100000, "gemm probe: min_repeats must be in [1, 100000]");
  std::vector<float> x(size_t(M * K)), out(size_t(M * N));
  uint32_t s = 12345;
  auto next = [&s] { s = s * 1664525u + 1013904223u; return float(int32_t(s >> 8) - (1 << 23)) / float(1 << 23); };
  for (auto& v : x) v = next();
  std::vector<float> wf;
  std::vector<uint16_t> wb;
  Linear L;
  L.dtype = dtype;
  L.N = N;
  L.K = K;
  if (dtype == DType::F32) {
    wf.resize(size_t(N * K));
    for (auto& v : wf) v = 0.02f * next();
    L.w = wf.data();
  } else {
    wb.resize(size_t(N * K));
    for (auto& v : wb) v = f32_to_bf16(0.02f * next());
    L.w = wb.data();
  }
  linear_forward(out.data(), x.data(), L, M);
  const RepeatTimes t = time_repeats([&] { linear_forward(out.data(), x.data(), L, M); }, seconds, min_repeats, 100000);
  GemmResult r;
  r.best_ms = t.best_ms;
  r.median_ms = t.median_ms;
  r.gflops = 2.0 * double(M) * double(N) * double(K) / (r.best_ms * 1e-3) / 1e9;
  r.repeats = t.repeats;
  r.backend = linear_backend_name(dtype);
  return r;
}

}  // namespace vr::bench
